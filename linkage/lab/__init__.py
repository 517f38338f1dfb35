"""The lab: synthetic populations with ground truth (:mod:`.synthetic`), linkage quality
against truth (:mod:`.quality`) and attack simulation (:mod:`.audit`). Never on the privacy
path: partner/ and tlu/ do not import it. Exports nothing itself; the verbs are exported by
the top-level ``linkage`` package.
"""
