"""Privacy: pseudonymisation of agent and subject identifiers."""

from trajops.privacy.pseudonym import Pseudonymiser, load_or_create_key

__all__ = ["Pseudonymiser", "load_or_create_key"]
