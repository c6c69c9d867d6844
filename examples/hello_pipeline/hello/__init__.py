"""An example pipeline package for arko: the ``hello.v1.Greeter`` service."""
