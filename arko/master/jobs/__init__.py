"""The job core: a job's life from submission to its kept record.

``service`` is the one entry every adapter calls; ``executor`` dispatches a job
to a slave; ``queue``, ``scheduler`` and ``policy`` decide where and when;
``params`` builds the slave's request; ``live`` holds in-flight jobs' events for
watchers; ``records`` journals every job so none is lost to a crash.
"""
