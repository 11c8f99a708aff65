"""English and Spanish: the Spanish catalog covers every string the code and templates use."""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from rapport.web.i18n import negotiate

ROOT = Path(__file__).parents[2]
CATALOG = ROOT / "src/rapport/locale/es/LC_MESSAGES/messages.po"


def _extract(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    keywords = [
        "-k",
        "N_",
        "-k",
        "_",
        "-k",
        "gettext",
        "-k",
        "ngettext:1,2",
        "-k",
        "InvalidInput",
        "-k",
        "Conflict",
        "-k",
        "Forbidden",
        "-k",
        "ReplyCheck:2",
        "-k",
        "SendError",
    ]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            *keywords,
            "-o",
            str(pot),
            str(ROOT / "src"),
        ],
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        return {m.id for m in read_po(handle) if m.id and isinstance(m.id, str)}


def test_every_string_has_a_spanish_translation(tmp_path):
    used = _extract(tmp_path)
    with CATALOG.open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle) if m.id}
    missing = sorted(s for s in used if not catalog.get(s))
    assert not missing, f"translate these in {CATALOG.relative_to(ROOT)} (make messages): {missing}"


def test_accept_language_negotiation():
    assert negotiate("es-MX,es;q=0.9,en;q=0.8") == "es"
    assert negotiate("fr-FR, en;q=0.3") == "en"
    assert negotiate("fr") == "en"
    assert negotiate(None) == "en"
    assert negotiate("en;q=0.2, es;q=0.9") == "es"
