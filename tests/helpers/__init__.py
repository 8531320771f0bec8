"""What the tests share, one module per concern: ports (free ports, waiting), processes (every
server the tests start: the gate, the edge, PostgreSQL; one start-and-wait), http (clients,
login and CSRF), mail (the SMTP sink), support (the support form), project (the marker project,
tariffs, people, settings), tls (certificates). Plain functions and classes: fixtures live in
the conftest.py files, and no test module imports another (tests/test_suite_layout.py)."""
