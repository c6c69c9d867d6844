"""Triggers and schedules: jobs a forge's webhook or the clock starts.

``config`` declares them (``[[trigger]]`` and ``[[schedule]]`` tables of the
master's ``--config``); ``pointer`` reads a payload by JSON pointer;
``signatures`` checks each forge's proof; ``hooks`` turns one delivery into a
job (or a reason not to); ``clock`` fires schedules once a slot fleet-wide;
``statuses`` posts GitHub commit statuses as hook jobs run; ``overview``
lists them all with their last job; ``seams`` names what they need from the
store and the job core.
"""
