"""What every view stands on: the running gate's state, who the visitor is, the responses views
share, form checks, and the fast path for plain page requests. Views import from here, never
from the factory (gate.factory) that wires it all together."""
