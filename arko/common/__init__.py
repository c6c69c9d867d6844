"""Code shared by the master and the slave: errors, settings, logging, servers."""
