# Models arrive with their issues (see ROADMAP.md).
