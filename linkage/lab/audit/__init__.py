"""Attack simulation (``linkage audit``): play the attacker against an encoding and report the
worst case each published attack reaches.

Code boundary. The attack modules (:mod:`.leaks`, :mod:`.frequency`, :mod:`.patterns`,
:mod:`.graph`, with the attacker-side plaintext tools in :mod:`.plaintext`) see only what an
attacker sees: encoded filters and block keys, the schema and tokenisation (public by the
conservative, standard assumption) and a plaintext reference population. They never import
``linkage.secret`` or the partner encoder (a test checks that). Only :mod:`.scenario` (setting
up mode (b): encode a synthetic population under a throwaway secret) calls ``linkage.encode``,
and the partner's own plaintext (``truth``) is used by :mod:`.runner` only to *score* the
attacks' guesses, never to make them. Threat model: :data:`.results.THREAT_MODEL`.

The entry point is :func:`linkage.lab.audit.runner.audit` (exported as ``linkage.audit``).
"""
