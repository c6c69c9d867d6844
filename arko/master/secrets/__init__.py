"""Secrets the master keeps for jobs: sealed at rest, revealed only on the way to a slave.

:mod:`.sealing` reads the key file and seals values (AES-GCM); :mod:`.vault`
sets, lists, deletes and opens secrets in the store; :mod:`.references`
replaces ``${secret:NAME}`` in a job's inputs for the methods a secret allows.
"""
