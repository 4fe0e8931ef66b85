"""The `touchpoint` command: thin commands that parse options, call the stages and print with rich."""
