"""``deltaprop playground``: a local web page where a learner steps through back propagation.

:mod:`.settings` checks what a page may ask for, :mod:`.session` is one browser tab's training
state, :mod:`.server` the Starlette routes and WebSocket (the ``[web]`` extra), ``static/`` the
page. Importing this room imports no web framework: :mod:`.server` does, when it is used.
"""
