"""SMS consent keywords: which words opt out, opt back in or ask for help, and who answers.

Sources, checked when this was written:

- Twilio's Advanced Opt-Out tutorial: on long codes Twilio itself handles the English words
  STOP, UNSUBSCRIBE, END, QUIT, STOPALL, REVOKE, OPTOUT and CANCEL, re-subscribes on START,
  YES and UNSTOP, and answers HELP and INFO; it then refuses sends to an opted-out number
  (error 21610). With Advanced Opt-Out on, the webhook carries `OptOutType` (STOP, START,
  HELP) for whatever keywords the account configured, in any language.
- Twilio's help centre, "What are the requirements for a Spanish-language short code?": US
  carriers require Spanish programs to answer ALTO (stop) and AYUDA (help).
- BAJA ("darse de baja") is the opt-out word Spanish and Latin American programs print, as the
  Mobile Marketing Association's guidance is commonly summarised; INICIO is listed as the
  Spanish START by US SMS platforms. ALTA ("darse de alta") is its usual counterpart in Spain;
  we found no provider document naming it and accept it because refusing a customer who asks
  to be written to again would be worse than a false match on a one-word message.

Only a message that is exactly the keyword counts (case and surrounding punctuation ignored):
"Stop sending me the invoice twice" is a customer message, not an opt-out.

Who answers: the provider answers the words it handles itself (English on long codes, or
anything when `OptOutType` is present); Rapport answers the others in the webhook's response
(TwiML), in the customer's language, and answers everything when the inbox says the provider
does not (short codes, other Twilio-compatible providers).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from xml.sax.saxutils import escape

from rapport.domain.ports import Consent


class KeywordKind(StrEnum):
    opt_out = "opt_out"
    opt_in = "opt_in"
    help = "help"


PROVIDER_KEYWORDS: dict[str, KeywordKind] = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
        KeywordKind.opt_out,
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), KeywordKind.opt_in),
    **dict.fromkeys(("HELP", "INFO"), KeywordKind.help),
}
SPANISH_KEYWORDS: dict[str, KeywordKind] = {
    **dict.fromkeys(("ALTO", "BAJA"), KeywordKind.opt_out),
    **dict.fromkeys(("ALTA", "INICIO"), KeywordKind.opt_in),
    "AYUDA": KeywordKind.help,
}
OPT_OUT_TYPES = {"STOP": KeywordKind.opt_out, "START": KeywordKind.opt_in, "HELP": KeywordKind.help}

# The provider's standard replies (Twilio's long-code defaults), and ours in Spanish.
REPLIES: dict[tuple[KeywordKind, str], str] = {
    (KeywordKind.opt_out, "en"): "You have successfully been unsubscribed. You will not receive "
    "any more messages from this number. Reply START to resubscribe.",
    (KeywordKind.opt_in, "en"): "You have successfully been re-subscribed to messages from this "
    "number. Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    (KeywordKind.help, "en"): "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    (KeywordKind.opt_out, "es"): "Te has dado de baja. No recibirás más mensajes de este "
    "número. Responde ALTA para volver a suscribirte.",
    (KeywordKind.opt_in, "es"): "Te has vuelto a suscribir a los mensajes de este número. "
    "Responde AYUDA para obtener ayuda o BAJA para darte de baja.",
    (KeywordKind.help, "es"): "Responde BAJA para darte de baja. Pueden aplicarse tarifas de "
    "mensajes y datos.",
}


@dataclass(frozen=True)
class Keyword:
    kind: KeywordKind
    word: str
    language: str
    provider_answers: bool  # the provider already replied (and blocks or unblocks sends)

    @property
    def consent(self) -> Consent | None:
        return {
            KeywordKind.opt_out: Consent.opt_out,
            KeywordKind.opt_in: Consent.opt_in,
        }.get(self.kind)

    @property
    def reply(self) -> str:
        return REPLIES[(self.kind, self.language)]


def _normalise(body: str) -> str:
    word = unicodedata.normalize("NFKC", body).strip().strip(".!¡¿?,;:\"'").strip()
    return word.upper()


def classify(body: str, opt_out_type: str | None = None) -> Keyword | None:
    """The consent keyword a message is, if it is one."""
    word = _normalise(body)
    if opt_out_type and opt_out_type.upper() in OPT_OUT_TYPES:
        language = "es" if word in SPANISH_KEYWORDS else "en"
        return Keyword(OPT_OUT_TYPES[opt_out_type.upper()], word, language, provider_answers=True)
    if word in PROVIDER_KEYWORDS:
        return Keyword(PROVIDER_KEYWORDS[word], word, "en", provider_answers=True)
    if word in SPANISH_KEYWORDS:
        return Keyword(SPANISH_KEYWORDS[word], word, "es", provider_answers=False)
    return None


def twiml(message: str | None) -> bytes:
    """A TwiML response: empty (send nothing) or one reply message."""
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'.encode()
