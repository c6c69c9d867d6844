"""The slaves as the master knows them: their records, registration and probing.

``slave`` is one slave's state; ``registry`` the index of them; ``probe`` what a
ping learns; ``discovery`` reads a slave's services through reflection;
``admission`` decides who may register.
"""
