"""The example application: greets with a library installed in the builder stage."""

import sys

import greetlib

if __name__ == "__main__":
    print(greetlib.greet(sys.argv[1] if len(sys.argv) > 1 else "world"))
