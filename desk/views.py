from django.shortcuts import render


def home(request):
    """The desk's home: where the agent's queues will live."""
    return render(request, "desk/desk_home.html")
