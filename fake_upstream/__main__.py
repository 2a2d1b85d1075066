"""`python -m fake_upstream --port N`."""

from fake_upstream.server import main

main()
