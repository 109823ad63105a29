"""LaTeX in titles and abstracts becomes readable text (newsletter.render.latex.readable): a pure function."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.render.latex import readable


@pytest.mark.parametrize(("text", "shown"), [
    ("S^{3}: Increasing GPU Utilization during Generative Inference", "S³: Increasing GPU Utilization during "
                                                                      "Generative Inference"),
    ("below 2.2 times 10^{15} FLOPs", "below 2.2 times 10¹⁵ FLOPs"),
    ("$\\mathcal{O}(n \\log n)$ attention", "𝒪(n log n) attention"),
    ("$\\mathbb{R}^d$ and $x_i$", "ℝᵈ and xᵢ"),
    ("$\\alpha$-DPO", "α-DPO"),
    ("u-$\\mu$P", "u-μP"),
    ("$O(n)$ memory", "O(n) memory"),
    ("D_{KL}(True||Model)", "D_KL(True||Model)"),  # no subscript K or L in Unicode: the plain form
    ("called G_{stack}, exhibits", "called G_stack, exhibits"),
    ("an {\\bf 8.2\\%} perplexity", "an 8.2% perplexity"),
    ("GELU are {\\em ill-suited} for", "GELU are ill-suited for"),
    ("\\textbf{Varco Arena} provides", "Varco Arena provides"),
    ("na\\\"{\\i}ve ensembling", "naïve ensembling"),
    ("(NeRV, E-NeRV, \\etc) reconstruct", "(NeRV, E-NeRV, etc.) reconstruct"),
    ("\\frac{1}{2} and $\\sqrt{n}$", "1/2 and √n"),
    ("$\\times$ 3 faster", "× 3 faster"),
    ("\\unknowncommand{kept} text", "kept text"),  # fallback: the markup goes, the text stays
])
def test_latex_reads_as_text(text, shown):
    assert readable(text) == shown


@pytest.mark.parametrize("text", [
    "costs $5 and $10 more",  # dollars in prose are not math
    "snake_case_name and a_b",
    "A plain title: nothing to do",
    "C++ & Rust: 2^n is not markup here",
])
def test_prose_is_left_alone(text):
    assert readable(text) == text


@given(st.text(alphabet=st.sampled_from(list("ab $\\^_{}()x1 alpha mathcal frac text")), max_size=60))
def test_never_raises_and_leaves_no_commands(text):
    result = readable(text)
    assert "\\" not in result  # every command is rendered or dropped
    if "\\" in text or "$" in text:
        assert "{" not in result and "}" not in result
