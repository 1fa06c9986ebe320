"""
C++ core of micrograd_cpp: scalar reverse-mode autograd on an arena of nodes.
"""

from collections.abc import Callable, Iterable
from typing import Any, SupportsFloat, SupportsIndex


class Value:
    """
    A scalar (float64) in a computation graph, with micrograd's API: build
    expressions with + - * / ** and the methods below, then call backward()
    on the result to fill in .grad of everything it depends on.
    """

    def __setattr__(self, name: str, value: object, /) -> None:
        """Set an attribute: a property of the type, or one that lives with the node."""

    def __delattr__(self, name: str, /) -> None:
        """Delete an attribute set on the node."""

    def __init__(self, data: SupportsFloat | SupportsIndex, _children: Iterable[Value] = (), _op: str = '', label: str = '') -> None: ...

    def __add__(self, other: Value | SupportsFloat, /) -> Value:
        """self + other (d/dx = d/dy = 1)."""

    def __radd__(self, other: Value | SupportsFloat, /) -> Value:
        """other + self, other a number (it becomes a leaf)."""

    def __sub__(self, other: Value | SupportsFloat, /) -> Value:
        """self - other (d/dx = 1, d/dy = -1)."""

    def __rsub__(self, other: Value | SupportsFloat, /) -> Value:
        """other - self, other a number (it becomes a leaf)."""

    def __mul__(self, other: Value | SupportsFloat, /) -> Value:
        """self * other (d/dx = y, d/dy = x)."""

    def __rmul__(self, other: Value | SupportsFloat, /) -> Value:
        """other * self, other a number (it becomes a leaf)."""

    def __pow__(self, other: Value | SupportsFloat, /) -> Value:
        """
        self ** other. A number exponent k gives micrograd's '**k' node (d/dx = k*x**(k-1));
        a Value exponent y also gets d/dy = x**y * log(x) (0 where x == 0 and y >= 0).
        A negative base with a non-integer exponent gives nan (micrograd: a complex number).
        """

    def __rpow__(self, other: Value | SupportsFloat, /) -> Value:
        """other ** self, other a number (the base becomes a leaf)."""

    def __neg__(self) -> Value:
        """-self (d/dx = -1)."""

    def __abs__(self) -> Value:
        """abs(self): as self.abs()."""

    def __truediv__(self, other: Value | SupportsFloat, /) -> Value:
        """
        self / other, IEEE division (x/0 is inf or nan). d/dx = 1/y, d/dy = -x/y**2.
        """

    def __rtruediv__(self, other: Value | SupportsFloat, /) -> Value:
        """other / self, other a number (it becomes a leaf)."""

    __array_ufunc__: None = None

    @property
    def label(self) -> str:
        """
        A name for this node, shown by draw_dot ('' when unset; writable on any node).
        """

    @label.setter
    def label(self, value: str, /) -> None: ...

    @property
    def data(self) -> float:
        """The scalar this node holds (always a Python float; writable)."""

    @data.setter
    def data(self, value: SupportsFloat | SupportsIndex, /) -> None: ...

    @property
    def grad(self) -> float:
        """
        d(root)/d(this node), accumulated by backward() (writable; set it to 0 to reset).
        """

    @grad.setter
    def grad(self, value: SupportsFloat | SupportsIndex, /) -> None: ...

    @property
    def _op(self) -> str:
        """
        The op that produced this node, labelled as micrograd does ('' for a leaf).
        """

    @property
    def _prev(self) -> set[Value]:
        """
        The set of this node's inputs (the same Python objects each time while they live).
        """

    @property
    def _backward(self) -> Callable[[], None]:
        """
        This node's own backward step, as micrograd's: calling it adds ``self.grad`` times
        the local derivatives into the inputs' grads, once (a leaf's does nothing; a fused
        neuron is expanded first). Assignable on a node made as ``Value(data, children, op)``.
        """

    @_backward.setter
    def _backward(self, value: Callable[[], None], /) -> None: ...

    def backward(self) -> None:
        """
        Backpropagate from this node, as micrograd does: set this node's grad to 1, then add
        d(this)/d(node) into the grad of every node it depends on. Grads are not reset first,
        so calling it twice accumulates (reset them with ``v.grad = 0`` or ``zero_grad()``).
        Ctrl-C stops a long backward with KeyboardInterrupt, leaving grads partly updated.
        """

    def relu(self) -> Value:
        """
        max(0, x) as micrograd: 0 if x < 0 else x; d/dx = 1 where the result is > 0, else 0.
        """

    def tanh(self) -> Value:
        """tanh(x); d/dx = 1 - tanh(x)**2."""

    def sigmoid(self) -> Value:
        """1 / (1 + exp(-x)); d/dx = sigmoid(x) * (1 - sigmoid(x))."""

    def exp(self) -> Value:
        """e**x (inf on overflow); d/dx = e**x."""

    def log(self) -> Value:
        """
        Natural log: log(0) = -inf, log(x < 0) = nan (IEEE, as PyTorch); d/dx = 1/x.
        """

    def softplus(self) -> Value:
        """log(1 + exp(x)), without overflow for large x; d/dx = sigmoid(x)."""

    def abs(self) -> Value:
        """|x| (also abs(v)); d/dx = sign(x), 0 at 0 and at nan (as PyTorch)."""

    def __repr__(self) -> str:
        """micrograd's repr: Value(data=..., grad=...)."""

    def __reduce__(self) -> tuple[type[Value], tuple[float], tuple[object, ...]]:
        """
        Pickle support: plain data (no code), versioned and checked when loaded. A leaf
        keeps data, grad and label; any other value its whole graph below it.
        """

    def __setstate__(self, state: tuple[object, ...], /) -> None:
        """Unpickling: the state __reduce__ made (ValueError if it is malformed)."""

    def __copy__(self) -> Value:
        """copy.copy: a new node with the same op, inputs, data, grad and label."""

    def __deepcopy__(self, memo: dict[int, object], /) -> Value:
        """
        copy.deepcopy: a copy of the whole graph below this value (any depth), sharing
        nothing with it; values copied in the same deepcopy stay one graph.
        """

class Value32:
    """
    Value with float32 data and grads: every op computes in float32.
    Value32 and Value cannot be mixed in one expression.
    """

    def __setattr__(self, name: str, value: object, /) -> None:
        """Set an attribute: a property of the type, or one that lives with the node."""

    def __delattr__(self, name: str, /) -> None:
        """Delete an attribute set on the node."""

    def __init__(self, data: SupportsFloat | SupportsIndex, _children: Iterable[Value32] = (), _op: str = '', label: str = '') -> None: ...

    def __add__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """self + other (d/dx = d/dy = 1)."""

    def __radd__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """other + self, other a number (it becomes a leaf)."""

    def __sub__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """self - other (d/dx = 1, d/dy = -1)."""

    def __rsub__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """other - self, other a number (it becomes a leaf)."""

    def __mul__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """self * other (d/dx = y, d/dy = x)."""

    def __rmul__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """other * self, other a number (it becomes a leaf)."""

    def __pow__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """
        self ** other. A number exponent k gives micrograd's '**k' node (d/dx = k*x**(k-1));
        a Value exponent y also gets d/dy = x**y * log(x) (0 where x == 0 and y >= 0).
        A negative base with a non-integer exponent gives nan (micrograd: a complex number).
        """

    def __rpow__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """other ** self, other a number (the base becomes a leaf)."""

    def __neg__(self) -> Value32:
        """-self (d/dx = -1)."""

    def __abs__(self) -> Value32:
        """abs(self): as self.abs()."""

    def __truediv__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """
        self / other, IEEE division (x/0 is inf or nan). d/dx = 1/y, d/dy = -x/y**2.
        """

    def __rtruediv__(self, other: Value32 | SupportsFloat, /) -> Value32:
        """other / self, other a number (it becomes a leaf)."""

    __array_ufunc__: None = None

    @property
    def label(self) -> str:
        """
        A name for this node, shown by draw_dot ('' when unset; writable on any node).
        """

    @label.setter
    def label(self, value: str, /) -> None: ...

    @property
    def data(self) -> float:
        """The scalar this node holds (always a Python float; writable)."""

    @data.setter
    def data(self, value: SupportsFloat | SupportsIndex, /) -> None: ...

    @property
    def grad(self) -> float:
        """
        d(root)/d(this node), accumulated by backward() (writable; set it to 0 to reset).
        """

    @grad.setter
    def grad(self, value: SupportsFloat | SupportsIndex, /) -> None: ...

    @property
    def _op(self) -> str:
        """
        The op that produced this node, labelled as micrograd does ('' for a leaf).
        """

    @property
    def _prev(self) -> set[Value32]:
        """
        The set of this node's inputs (the same Python objects each time while they live).
        """

    @property
    def _backward(self) -> Callable[[], None]:
        """
        This node's own backward step, as micrograd's: calling it adds ``self.grad`` times
        the local derivatives into the inputs' grads, once (a leaf's does nothing; a fused
        neuron is expanded first). Assignable on a node made as ``Value(data, children, op)``.
        """

    @_backward.setter
    def _backward(self, value: Callable[[], None], /) -> None: ...

    def backward(self) -> None:
        """
        Backpropagate from this node, as micrograd does: set this node's grad to 1, then add
        d(this)/d(node) into the grad of every node it depends on. Grads are not reset first,
        so calling it twice accumulates (reset them with ``v.grad = 0`` or ``zero_grad()``).
        Ctrl-C stops a long backward with KeyboardInterrupt, leaving grads partly updated.
        """

    def relu(self) -> Value32:
        """
        max(0, x) as micrograd: 0 if x < 0 else x; d/dx = 1 where the result is > 0, else 0.
        """

    def tanh(self) -> Value32:
        """tanh(x); d/dx = 1 - tanh(x)**2."""

    def sigmoid(self) -> Value32:
        """1 / (1 + exp(-x)); d/dx = sigmoid(x) * (1 - sigmoid(x))."""

    def exp(self) -> Value32:
        """e**x (inf on overflow); d/dx = e**x."""

    def log(self) -> Value32:
        """
        Natural log: log(0) = -inf, log(x < 0) = nan (IEEE, as PyTorch); d/dx = 1/x.
        """

    def softplus(self) -> Value32:
        """log(1 + exp(x)), without overflow for large x; d/dx = sigmoid(x)."""

    def abs(self) -> Value32:
        """|x| (also abs(v)); d/dx = sign(x), 0 at 0 and at nan (as PyTorch)."""

    def __repr__(self) -> str:
        """micrograd's repr: Value(data=..., grad=...)."""

    def __reduce__(self) -> tuple[type[Value32], tuple[float], tuple[object, ...]]:
        """
        Pickle support: plain data (no code), versioned and checked when loaded. A leaf
        keeps data, grad and label; any other value its whole graph below it.
        """

    def __setstate__(self, state: tuple[object, ...], /) -> None:
        """Unpickling: the state __reduce__ made (ValueError if it is malformed)."""

    def __copy__(self) -> Value32:
        """copy.copy: a new node with the same op, inputs, data, grad and label."""

    def __deepcopy__(self, memo: dict[int, object], /) -> Value32:
        """
        copy.deepcopy: a copy of the whole graph below this value (any depth), sharing
        nothing with it; values copied in the same deepcopy stay one graph.
        """

def layer_forward(neurons: Iterable[tuple[Iterable[Value | SupportsFloat], Value | SupportsFloat, bool]], x: Iterable[Value | SupportsFloat]) -> Value | list[Value]:
    """
    micrograd's Layer.__call__ for neurons given as (w, b, nonlin): each one
    sum((wi*xi ...), b), relu'd if nonlin; a bare Value for one neuron.
    """

class MLPPlan:
    """What MLP.__call__ computes from, kept between calls (nn.py)."""

    def __init__(self, lists: Iterable[list[object]], layers: Iterable[Iterable[tuple[Iterable[Value | SupportsFloat], Value | SupportsFloat, bool]]], parameters: Iterable[Value], changes: int) -> None:
        """
        The neurons of each layer as (w, b, nonlin), the model's parameters, the lists
        they were read from, and nn's count of attribute changes then.
        """

    def current(self, changes: int) -> bool:
        """
        Whether nn counts ``changes`` attribute changes, as when the plan was made,
        and every list still holds the objects it held then.
        """

    def __call__(self, x: Iterable[Value | SupportsFloat], changes: int) -> Any:
        """
        The layers in turn on x: one Value, or a list for several outputs (x itself
        when there are no layers, as micrograd); None when the plan is not current.
        """

    def parameters(self) -> list[Value]:
        """The model's parameters, in order."""

def zero_grad(params: Iterable[Value]) -> None:
    """Set the grad of every value in params to 0."""

def hinge_loss(scores: Iterable[Value], labels: Iterable[SupportsFloat]) -> Value:
    """Mean of relu(1 - y*s) over the batch (labels y in {-1, 1})."""

def mse_loss(predictions: Iterable[Value], targets: Iterable[Value | SupportsFloat]) -> Value:
    """Mean of (p - y)**2 over the batch."""

def binary_cross_entropy_with_logits(logits: Iterable[Value], targets: Iterable[SupportsFloat]) -> Value:
    """Mean of softplus(x) - x*y over the batch (targets y in [0, 1])."""

def cross_entropy_loss(scores: Iterable[Iterable[Value]], classes: Iterable[SupportsIndex]) -> Value:
    """Mean softmax cross-entropy of rows of class scores."""

def l2_penalty(params: Iterable[Value], alpha: float) -> Value:
    """alpha * sum(p*p for p in params), as micrograd's demo."""

class SGD:
    """Stochastic gradient descent over a list of values (torch.optim.SGD)."""

    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None: ...

    def step(self) -> None:
        """Update every parameter from its grad."""

    def zero_grad(self) -> None:
        """Set every parameter's grad to 0."""

    @property
    def lr(self) -> float:
        """The learning rate (may change between steps)."""

    @lr.setter
    def lr(self, arg: float, /) -> None: ...

    def __reduce__(self) -> tuple[type[SGD], tuple[object, ...], tuple[object, ...]]:
        """
        Pickle support: the parameters and hyperparameters, then the momentum buffers
        and the step count (plain data, checked when loaded).
        """

    def __setstate__(self, state: tuple[object, ...], /) -> None:
        """Unpickling: the state __reduce__ made (ValueError if it is malformed)."""

class Adam:
    """Adam over a list of values (torch.optim.Adam, L2 weight decay)."""

    def __init__(self, params: Iterable[Value], lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-08, weight_decay: float = 0.0) -> None: ...

    def step(self) -> None:
        """Update every parameter from its grad."""

    def zero_grad(self) -> None:
        """Set every parameter's grad to 0."""

    @property
    def lr(self) -> float:
        """The learning rate (may change between steps)."""

    @lr.setter
    def lr(self, arg: float, /) -> None: ...

    def __reduce__(self) -> tuple[type[Adam], tuple[object, ...], tuple[object, ...]]:
        """
        Pickle support: the parameters and hyperparameters, then the moments and the
        step count (plain data, checked when loaded).
        """

    def __setstate__(self, state: tuple[object, ...], /) -> None:
        """Unpickling: the state __reduce__ made (ValueError if it is malformed)."""

class Graph:
    """
    The graph reachable from ``root``, captured once as a flat program and replayed in C++.

    ``forward()`` recomputes every interior node's data from the current data of every leaf
    (parameters, inputs, constants), ``backward()`` is ``root.backward()`` on a freshly
    built graph; both are bit for bit what rebuilding the same expression gives, and every
    Value you hold shows the new numbers. ``inputs``: leaves of the graph that
    ``set_inputs()`` writes, in order.

    A replay sees the structure that was captured: branches taken on ``.data`` while the
    graph was built, Python numbers computed from data (now constants), and the batch size
    and model shape are frozen. Build and capture again when they change.
    """

    def __init__(self, root: Value | Value32, inputs: Iterable[Value | Value32] | None = None) -> None:
        """
        Capture the graph of ``root``. ``inputs``: distinct leaves of it, in the order
        ``set_inputs()`` writes them (ValueError naming the position of one that is not).
        """

    def forward(self) -> None:
        """
        Recompute every interior node's data from the leaves' current data (and reset its
        grad to 0, as in a freshly built graph). Ctrl-C stops it with KeyboardInterrupt,
        as it stops ``backward()``: the nodes it reached hold their new data, the others
        their old (run forward() again).
        """

    def backward(self) -> None:
        """
        ``root.backward()`` as on a freshly built graph: interior grads start from 0, the
        root's from 1, and leaves' grads accumulate (reset them with ``zero_grad()``). Uses
        the data of the last ``forward()`` (or of the capture). Ctrl-C stops it with
        KeyboardInterrupt, as it stops ``backward()``: the interior nodes it reached hold
        their new grads, the others and the leaves their old (run backward() again).
        """

    def set_inputs(self, values: Iterable[SupportsFloat]) -> None:
        """
        Write ``values`` into the inputs' data, in order: a float64 or float32 NumPy array
        of any shape (read in C order, in C++) or any iterable of numbers. A wrong length or
        type raises ValueError or TypeError and changes nothing.
        """

    def check(self) -> float:
        """
        Recompute every interior node from its inputs one node at a time, as the eager ops
        do, and return the largest difference from the data it holds (0.0 after a replay;
        inf where only one is nan). A debugging aid: it changes nothing.
        """

    def __len__(self) -> int:
        """
        The number of nodes in the graph, leaves included (a fused neuron is one).
        """

    @property
    def root(self) -> Value | Value32:
        """The Value the graph was captured from."""

    @property
    def inputs(self) -> list[Value | Value32]:
        """The leaves ``set_inputs()`` writes, in order."""

    @property
    def dtype(self) -> str:
        """'float64' for a graph of Values, 'float32' for one of Value32s."""

    def __repr__(self) -> str: ...

def arena_stats(dtype: str = 'float64') -> dict[str, int]:
    """
    Memory held by the node arena of one precision, as a dict: 'live' (nodes alive),
    'capacity' (node slots obtained from the system), 'bytes' (their size in bytes) and
    'node_size' (bytes per node). Freed slots are reused before capacity grows. A fused
    neuron's node is counted in 'live' but kept beside its arrays, outside the slots.
    """
