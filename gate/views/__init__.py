"""The gate's pages and APIs, one blueprint per area: pages (the editions, errors, health),
auth (login, logout, account, password reset), support (requests), search. Views stand on
gate.web and the services below it; they never import the factory or each other."""
