"""`python -m llm.fake_upstream --port N`."""

from llm.fake_upstream.server import main

main()
