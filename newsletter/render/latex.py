"""LaTeX in titles and abstracts made readable as plain text: `S^{3}` -> S³, `\\mathcal{O}(n)` -> 𝒪(n),
`$\\alpha$-DPO` -> α-DPO, `{\\em ill-suited}` -> ill-suited. A pure function, cached (the same titles go to many
readers). What it does not know it strips to its text (`\\foo{bar}` -> bar); it never raises.

Only markup is touched: a `$` that does not open a math span (prices, "$5 and $10") stays as written.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

SUPERSCRIPT = dict(zip("0123456789+-=()abcdefghijklmnoprstuvwxyzT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᵀ",
                       strict=True))
SUBSCRIPT = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))
GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν",
    "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "upsilon": "υ", "phi": "φ", "varphi": "φ",
    "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ",
    "Pi": "Π", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}
SYMBOLS = {
    **GREEK,
    "times": "×", "cdot": "·", "cdots": "⋯", "ldots": "…", "dots": "…", "pm": "±", "mp": "∓", "div": "÷",
    "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠", "ne": "≠", "approx": "≈", "sim": "~", "simeq": "≃",
    "equiv": "≡", "propto": "∝", "infty": "∞", "to": "→", "rightarrow": "→", "leftarrow": "←", "Rightarrow": "⇒",
    "leftrightarrow": "↔", "mapsto": "↦", "in": "∈", "notin": "∉", "subset": "⊂", "subseteq": "⊆", "cup": "∪",
    "cap": "∩", "forall": "∀", "exists": "∃", "partial": "∂", "nabla": "∇", "sum": "∑", "prod": "∏", "int": "∫",
    "sqrt": "√", "ell": "ℓ", "circ": "∘", "star": "⋆", "ast": "∗", "oplus": "⊕", "otimes": "⊗", "top": "⊤",
    "bot": "⊥", "langle": "⟨", "rangle": "⟩", "mid": "|", "vert": "|", "|": "‖", "%": "%", "&": "&", "_": "_",
    "#": "#", "$": "$", "{": "{", "}": "}", ",": " ", ";": " ", "quad": " ", "qquad": " ", " ": " ", "!": "",
    "log": "log", "exp": "exp", "max": "max", "min": "min", "arg": "arg", "sin": "sin", "cos": "cos",
    "LaTeX": "LaTeX", "TeX": "TeX", "etc": "etc.", "ie": "i.e.", "eg": "e.g.", "textasciitilde": "~",
}
# Letters in a style: \mathcal{O} -> 𝒪, \mathbb{R} -> ℝ (Unicode's mathematical alphanumerics, with its holes).
_SCRIPT = {"B": "ℬ", "E": "ℰ", "F": "ℱ", "H": "ℋ", "I": "ℐ", "L": "ℒ", "M": "ℳ", "R": "ℛ", "e": "ℯ", "g": "ℊ",
           "o": "ℴ"}
_DOUBLE = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"}
_STYLED_BASE = {"mathcal": (0x1D49C, _SCRIPT), "mathscr": (0x1D49C, _SCRIPT), "mathbb": (0x1D538, _DOUBLE)}
# Commands whose argument is simply their text.
TEXT_COMMANDS = {"text", "textrm", "textit", "textbf", "texttt", "textsf", "textsc", "emph", "mathrm", "mathit",
                 "mathbf", "mathsf", "mathtt", "operatorname", "boldsymbol", "bm", "mbox", "underline", "hat",
                 "bar", "tilde", "vec", "widehat", "widetilde", "overline", "dot", "ddot"}
ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "c": "\u0327"}

_MATH_SPAN = re.compile(r"\$\$?([^$]{1,200}?)\$\$?")
_COMMAND = re.compile(r"\\([A-Za-z]+|[^A-Za-z\s])")
_GROUP_SWITCH = re.compile(r"\{\\(?:em|it|bf|rm|sc|tt|sf|sl|small|large|Large|footnotesize)\s+([^{}]*)\}")
_BRACED_SCRIPT = re.compile(r"(?<=[\w)\]}|'])([\^_])\{([^{}]*)\}")  # S^{3}, D_{KL}: LaTeX even outside $...$
_MATH_SCRIPT = re.compile(r"(?<=[\w)\]}|'])([\^_])([A-Za-z0-9*]|[+\-](?!\w))")  # x^2, x_i: inside $...$ only
_MARKUP = re.compile(r"[\\^_{}]")


@lru_cache(maxsize=8192)
def readable(text: str) -> str:
    """`text` with its LaTeX turned into readable plain text (Unicode where it has the characters)."""
    if "\\" not in text and "$" not in text and "^" not in text and "_{" not in text and "{" not in text:
        return text
    text = _MATH_SPAN.sub(_math_span, text)
    text = _GROUP_SWITCH.sub(r"\1", text)
    return _plain(text)


def _math_span(match: re.Match) -> str:
    body = match.group(1)
    # "$5 and $10": no markup and spaces inside is prose between two dollar signs, not math
    if not _MARKUP.search(body) and (" " in body.strip() or not body.strip()):
        return match.group(0)
    return _plain(body, math=True)


def _plain(text: str, math: bool = False) -> str:
    for _ in range(4):  # nested groups (\mathcal{\text{O}}): each pass resolves the innermost
        before = text
        text = _resolve_commands(text)
        if text == before:
            break
    text = _BRACED_SCRIPT.sub(_script, text)
    if math:
        text = _MATH_SCRIPT.sub(_script, text)
    text = text.replace("{", "").replace("}", "")
    text = re.sub(r"\\(?=\W|$)", "", text)  # a backslash left alone
    return " ".join(text.split()) if math else re.sub(r"  +", " ", text).strip()


def _resolve_commands(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _COMMAND.finditer(text):
        if match.start() < position:
            continue
        name = match.group(1)
        out.append(text[position:match.start()])
        position = match.end()
        if name.isalpha():  # a control word swallows the spaces after it, as in TeX
            while position < len(text) and text[position] in " \t":
                position += 1
        argument, after = _argument(text, position)
        if name in _STYLED_BASE and argument is not None:
            out.append(_styled(name, argument))
            position = after
        elif name in TEXT_COMMANDS and argument is not None:
            out.append(argument)
            position = after
        elif name == "frac" and argument is not None:
            second, end = _argument(text, after)
            out.append(f"{_wrap(argument)}/{_wrap(second or '')}")
            position = end if second is not None else after
        elif name in ACCENTS and (argument is not None or name in "\"'`^~" and position < len(text)):
            if argument is None:  # \"o
                argument, after = text[position], position + 1
            base = argument.replace("\\i", "i").replace("\\j", "j")
            out.append(unicodedata.normalize("NFC", base[:1] + ACCENTS[name]) + base[1:] if base else "")
            position = after
        elif name in SYMBOLS:
            symbol = SYMBOLS[name]
            out.append(symbol)
            # "\log n" stays two words; "\alpha-DPO" and "\times 10" join as written
            if symbol[-1:].isalpha() and match.end() < position < len(text) and text[position].isalnum():
                out.append(" ")
        elif name in ("i", "j"):
            out.append(name)
        # else: an unknown command is dropped; its argument, if any, stays as text
    out.append(text[position:])
    return "".join(out)


def _argument(text: str, start: int) -> tuple[str | None, int]:
    """The innermost-free braced argument at `start` ({...} without nested braces), or a single character."""
    if start < len(text) and text[start] == "{":
        end = text.find("}", start)
        inner = text[start + 1:end] if end != -1 else None
        if inner is None or "{" in inner:
            return None, start
        return inner, end + 1
    return None, start


def _styled(name: str, argument: str) -> str:
    base, holes = _STYLED_BASE[name]
    letters = []
    for ch in argument:
        if ch in holes:
            letters.append(holes[ch])
        elif "A" <= ch <= "Z":
            letters.append(chr(base + ord(ch) - ord("A")))
        elif "a" <= ch <= "z" and name != "mathbb":
            letters.append(chr(base + 26 + ord(ch) - ord("a")))
        else:
            letters.append(ch)
    return "".join(letters)


def _script(match: re.Match) -> str:
    mark, inner = match.groups()
    table = SUPERSCRIPT if mark == "^" else SUBSCRIPT
    if inner and all(ch in table for ch in inner):
        return "".join(table[ch] for ch in inner)
    if mark == "^" and inner in ("*", "∗"):
        return "*"
    return f"{mark}{_wrap(inner)}"


def _wrap(text: str) -> str:
    return text if len(text) <= 1 or text.isalnum() else f"({text})"
