"""Everything claudesec recognises, and the engines that find it.

:mod:`.catalogue` is the one table of rules (secrets and personal data) as data, with their
shapes in :mod:`.rules` and their checks in :mod:`.validators`. :mod:`.engine` finds secrets
(a hyperscan multi-literal prefilter, then the full pattern near each hit) and :mod:`.pii`
finds personal data. ``claudesec scan`` and DLP (:mod:`claudesec.guard.dlp`) both consume this
package; neither reaches into the other.
"""
