"""Every gradient shown and checked: finite-difference checks (:mod:`.gradcheck`), the record of
one forward and backward (:mod:`.trace`), and ``dp.explain`` (:mod:`.explain`): the seed's
derivation replayed on live numbers (:mod:`.replay`, the prose of the backward steps in
:mod:`.backward_steps`, the seed's notation in :mod:`.notation`), returned as a document
(:mod:`.document`, with its JSON Schema beside it); the seed's single neuron (:mod:`.neuron`).
"""

from .document import Explanation
from .explain import explain
from .neuron import explain_neuron
from .trace import LayerTrace, Trace, trace

__all__ = ["Explanation", "LayerTrace", "Trace", "explain", "explain_neuron", "trace"]
