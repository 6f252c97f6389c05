"""The model server: one process per device holding the served versions, with dynamic batching.

``server`` and ``protocol`` import no Django (the ``model_server`` management command wires the
database in); ``client`` is what web workers use to reach it over a local socket.
"""
