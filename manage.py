#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.logging import set_process_origin

    set_process_origin("cli")  # audit records made by commands say so

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
