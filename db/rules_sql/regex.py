"""REGEX in SQL: the leaf, and the translator of RE2 patterns into PostgreSQL regular
expressions that search alike."""

from db.rules_sql.fragments import INT_HIGH, INT_LOW, Leaf
from rules.matchers import Operand
from rules.values import compile_regex, storable_text


def regex(leaf: Leaf, operand: Operand) -> str:
    expected = operand.value
    if type(expected) is not str or compile_regex(expected) is None:
        return "false"
    translated = postgres_regex(expected)
    if translated is not None and operand.case_insensitive:
        return _folded_regex(leaf, translated)
    if translated is None:
        # Beyond the common subset PostgreSQL reads alike: the evaluator decides.
        unknown = leaf.c.unknown()
        return leaf.by_type({"string": unknown, "number": unknown})
    pattern = leaf.c.param(translated, "text")
    return leaf.by_type(
        {
            "string": f"{leaf.text} ~ {pattern}",
            "number": _number_search(leaf, f"{leaf.text} ~ {pattern}"),
        }
    )


def _folded_regex(leaf: Leaf, translated: str) -> str:
    """Case-insensitively: the lower-cased text searched with the pattern matched without
    regard to case. For an ASCII pattern and ASCII text, RE2's case folding and PostgreSQL's
    `~*` both reduce to A-Z = a-z (RE2's extra folds, K to the Kelvin sign and s to the long
    s, need non-ASCII text); anything else is left to the evaluator. Numbers' text forms are
    ASCII, and lower-casing leaves them as they are. The C collation keeps PostgreSQL's
    case-insensitive matching to ASCII rules (a Turkish locale would pair i with İ)."""
    if not translated.isascii():
        unknown = leaf.c.unknown()
        return leaf.by_type({"string": unknown, "number": unknown})
    pattern = leaf.c.param(translated, "text")
    return leaf.by_type(
        {
            "string": leaf.if_ascii(f'({leaf.folded} COLLATE "C") ~* {pattern}'),
            "number": _number_search(leaf, f'({leaf.text} COLLATE "C") ~* {pattern}'),
        }
    )


def _number_search(leaf: Leaf, search: str) -> str:
    """`search` (over the attribute's text) for a number, where that text is Python's."""
    # Numbers are searched in their Python text form (repr): integers as PostgreSQL writes
    # them; floats too unless repr would use an exponent (below 1e-4; from 1e16 up they are
    # stored as integers). Integers beyond 64 bits read back as floats: evaluator.
    number = f"{leaf.value}::numeric"
    return (
        f"(CASE WHEN scale({number}) = 0 AND {number} BETWEEN {INT_LOW} AND {INT_HIGH}"
        f" THEN {search}"
        f" WHEN scale({number}) > 0 AND (abs({number}) >= 0.0001 OR {number} = 0)"
        f" THEN {search}"
        f" ELSE {leaf.c.unknown()} END)"
    )


# RE2 patterns in PostgreSQL: a strict subset of RE2's syntax that PostgreSQL's advanced
# regular expressions read with the same meaning is rewritten (with every class spelled out
# in ASCII ranges, so no locale can widen \d or \w); any other pattern returns None and is
# left to the evaluator.

_RE2_CLASSES = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_RE2_CONTROL = {"n": "\\n", "t": "\\t", "r": "\\r", "f": "\\f"}
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")
# PostgreSQL unrolls counted repetitions into its automaton, so their cost per row grows with
# the counts; patterns counting more than this in total are left to the evaluator.
_MAX_REPEAT = 64


class _Untranslatable(Exception):
    pass


def postgres_regex(pattern: str) -> str | None:
    """The PostgreSQL regular expression that searches like RE2 searches `pattern`, or None."""
    if not storable_text(pattern):
        return None
    try:
        parser = _RegexParser(pattern)
        translated, _ = parser.alternation()
        if parser.position != len(pattern):
            return None
        return translated
    except _Untranslatable:
        return None


class _RegexParser:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0
        self.repeats = 0

    def peek(self, offset: int = 0) -> str | None:
        index = self.position + offset
        return self.pattern[index] if index < len(self.pattern) else None

    def take(self) -> str:
        char = self.peek()
        if char is None:
            raise _Untranslatable
        self.position += 1
        return char

    def alternation(self) -> tuple[str, bool]:
        """(translation, whether it holds a counted repetition)"""
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.take()
            branches.append(self.concatenation())
        if any(not branch for branch, _ in branches):
            raise _Untranslatable  # empty branches: legal in both, but not worth the doubt
        return "|".join(branch for branch, _ in branches), any(c for _, c in branches)

    def concatenation(self) -> tuple[str, bool]:
        pieces: list[str] = []
        counted = False
        while self.peek() not in (None, "|", ")"):
            atom, atom_counted, repeatable = self.atom()
            quantifier, is_counted = self.quantifier()
            if quantifier and not repeatable:
                raise _Untranslatable
            if is_counted and atom_counted:
                raise _Untranslatable  # nested counts multiply PostgreSQL's automaton
            pieces.append(atom + quantifier)
            counted = counted or atom_counted or is_counted
        return "".join(pieces), counted

    def atom(self) -> tuple[str, bool, bool]:
        """(translation, holds a counted repetition, may be quantified)"""
        char = self.take()
        if char in "^$":
            return char, False, False
        if char == ".":
            return "[^\\n]", False, True
        if char == "(":
            if self.peek() == "?":
                if self.peek(1) != ":":
                    raise _Untranslatable  # flags and named groups
                self.position += 2
            inner, counted = self.alternation()
            if self.take() != ")":
                raise _Untranslatable
            return f"(?:{inner})", counted, True
        if char == "[":
            return self.bracket(), False, True
        if char == "\\":
            return self.escape(in_bracket=False), False, True
        if char in _RE2_SPECIAL:
            raise _Untranslatable  # ")", "]", "{", quantifiers without an atom, ...
        return _literal(char), False, True

    def escape(self, in_bracket: bool) -> str:
        char = self.take()
        if char in _RE2_CLASSES:
            return _RE2_CLASSES[char] if in_bracket else f"[{_RE2_CLASSES[char]}]"
        if char.isupper() and char.lower() in _RE2_CLASSES and not in_bracket:
            return f"[^{_RE2_CLASSES[char.lower()]}]"
        if char in _RE2_CONTROL:
            return _RE2_CONTROL[char]
        if char.isascii() and not char.isalnum():
            return _literal(char)
        raise _Untranslatable  # \b, \A, \z, \p{..}, \x.., \Q..\E, octal, ...

    def bracket(self) -> str:
        negated = self.peek() == "^"
        if negated:
            self.take()
        members: list[str] = []
        first = True
        while True:
            char = self.take()
            if char == "]" and not first:
                break
            first = False
            if char in "[]":
                raise _Untranslatable  # POSIX classes, a leading "]"
            is_range = self.peek(0 if char != "\\" else 1) == "-"
            if char == "\\":
                member = self.escape(in_bracket=True)
                low = self.pattern[self.position - 1]
                if low in _RE2_CONTROL or low in _RE2_CLASSES:
                    if is_range and self.peek(1) not in ("]", None):
                        raise _Untranslatable  # a range from an escape
                    members.append(member)
                    continue
            else:
                low = char
            if self.peek() == "-" and self.peek(1) not in ("]", None):
                self.take()
                high = self.take()
                if high == "\\":
                    high = self.take()
                    if high.isalnum() or not high.isascii():
                        raise _Untranslatable
                elif high in "[]":
                    raise _Untranslatable
                if not (low.isascii() and high.isascii()) or ord(high) < ord(low):
                    raise _Untranslatable  # non-ASCII ranges may follow the locale
                members.append(f"{_literal(low)}-{_literal(high)}")
            else:
                members.append(_literal(low))
        return f"[{'^' if negated else ''}{''.join(members)}]"

    def quantifier(self) -> tuple[str, bool]:
        char = self.peek()
        if char in ("*", "+", "?"):
            self.take()
            quantifier, counted = char, False
        elif char == "{":
            end = self.pattern.find("}", self.position)
            body = self.pattern[self.position + 1 : end] if end > 0 else ""
            low, comma, high = body.partition(",")
            if not low.isdigit() or (high and not high.isdigit()) or not low.isascii():
                raise _Untranslatable  # a literal "{" in RE2, or malformed
            if high and int(high) < int(low):
                raise _Untranslatable
            self.repeats += int(high or low)
            if self.repeats > _MAX_REPEAT:
                raise _Untranslatable
            if comma and not high:
                quantifier = f"{{{int(low)},}}"
            elif comma:
                quantifier = f"{{{int(low)},{int(high)}}}"
            else:
                quantifier = f"{{{int(low)}}}"
            self.position = end + 1
            counted = True
        else:
            return "", False
        if self.peek() == "?":
            self.take()  # lazy: the same matches exist, only their extent differs
        if self.peek() in ("*", "+", "?", "{"):
            raise _Untranslatable
        return quantifier, counted


def _literal(char: str) -> str:
    """A character matching itself in PostgreSQL, inside or outside brackets."""
    if char.isascii() and not char.isalnum():
        return "\\" + char
    return char
