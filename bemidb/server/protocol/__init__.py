"""The Postgres v3 wire protocol: message codec (wire), login and auth, the per-connection session state
machine, running a portal, and the result/COPY adapters.

May import sql/, codec/, catalog/ and server's loose modules (engine, errors, settings, matviews); nothing
imports protocol/ but server/app.py.
"""
