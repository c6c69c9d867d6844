"""Tools for writing a pipeline of your own: ``arko-protoc`` (needs ``arko-ci[sdk]``)."""
