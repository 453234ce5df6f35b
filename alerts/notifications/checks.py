"""The template check: what a message template may not say, run when a tenant admin saves one, on
every built-in default in the tests, and again before a tenant's template is used to send.

A security notification is what phishers imitate, so ours must never look like one:

- it never asks for a password or a one-time code (in the languages we know: en, fr, es, de, pt,
  it), while it must carry the disclaimer that staff never ask for them: the check tells a request
  ("reply with the code") from the disclaimer and from advice ("never share your code") by
  whether the request is negated, in the same clause, without an exception ("with anyone except
  us") or a cancelling verb ("don't forget to send");
- it puts no personal data in the message: placeholders exist for masked or approximate values
  only (placeholders.py), and literal phone numbers and IP addresses are refused;
- it links nowhere but the signed answer page ({link}) and the tenant's configured official
  domain: every URL-like thing is found, bare domains, e-mail addresses and scheme-less links
  included, characters that browsers read as dots folded, hosts compared in their IDNA form, and
  userinfo tricks (https://official.example@evil.example), look-alike and internationalised
  domains, and link shorteners named as such;
- it fits its channel: the answer link where the channel can carry one (none in a voice call),
  the support contact where there is room, an SMS in two segments at most with the longest
  values (values.caps_for), a subject or title where the channel has one.

It is a guard, not a proof: language has more turns than any list. Every saved change is
audited with its before and after text, and a tenant template that fails the check when a
message is made (say, after the official domain changed) is not sent: the built-in default is.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from alerts.notifications import placeholders
from alerts.notifications.locales import locale_normalize
from alerts.notifications.sms import SmsLength, is_gsm7, sms_length
from alerts.notifications.values import caps_for, device_cap, fold_values, what_phrases, where_cap

CHANNELS = ("email", "sms", "push", "voice")
SUBJECT_CHANNELS = ("email", "push")  # an e-mail's subject, a push's title
LINK_CHANNELS = ("email", "sms", "push")
SUPPORT_REQUIRED = ("email", "voice")  # SMS and push have no room: the answer page they link to gives it
KINDS_WITHOUT_LINK = ("test",)  # a drill message asks for no answer

SMS_MAX_SEGMENTS = 2
LIMITS = {  # characters, with the longest values
    "subject": {"email": 150, "push": 70},
    "body": {"email": 3000, "push": 400, "voice": 1500, "sms": 10_000},
}

# ----------------------------------------------------------------------------- normalisation

# Characters browsers and IDNA treat as a dot in a host name.
_DOTS = {"\u3002": ".", "\uff0e": ".", "\uff61": ".", "\u2024": ".", "\ufe52": "."}
_INVISIBLE = {"Cf", "Co", "Cs", "Cn"}


def _invisible(text: str) -> list[str]:
    return sorted(
        {
            f"U+{ord(ch):04X}"
            for ch in text
            if unicodedata.category(ch) in _INVISIBLE or (unicodedata.category(ch) == "Cc" and ch not in "\n\t\r")
        }
    )


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(_DOTS.get(ch, ch) for ch in text)


def _fold(text: str) -> str:
    """Lower case without accents, for word matching: "Código" → "codigo"."""
    text = unicodedata.normalize("NFKD", _normal(text).casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


# ----------------------------------------------------------------------------- links

_SCHEMES = (
    "https?|ftps?|sftp|wss?|file|data|javascript|vbscript|mailto|tel|sms|smsto|callto|facetime|intent|market|"
    "itms(?:-apps)?|whatsapp|tg|viber|skype|geo|blob|about|chrome"
)
# A scheme and something right after its colon: "tel:+44...", "data:text/html,..." ("Data: your
# account" is prose, not a link).
_SCHEME_URL = re.compile(rf"(?i)(?<![\w.+-])(?:{_SCHEMES}):\S+|(?<![\w.+-])[a-z][a-z0-9+.\-]{{1,30}}://\S*")
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_HOST = rf"(?:{_LABEL}\.)+(?:[^\W\d_]{{2,63}}|xn--[a-z0-9-]{{2,59}})"
_IPV4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_BARE = re.compile(
    rf"(?i)(?<![\w@.\-/])(?:[\w.+\-]+@)?(?:{_HOST}|{_IPV4})(?::\d{{1,5}})?(?:[/?#]\S*)?(?![\w-])", re.UNICODE
)
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d\s().\-/]{5,}\d(?!\w)")

SHORTENERS = frozenset(
    """bit.ly bitly.com tinyurl.com t.co goo.gl ow.ly is.gd buff.ly rebrand.ly cutt.ly shorturl.at tiny.cc rb.gy
    s.id t.ly bl.ink lnkd.in trib.al v.gd qr.ae adf.ly bit.do shorte.st clck.ru u.to x.co tr.im po.st soo.gd
    mcaf.ee su.pr db.tt fb.me amzn.to youtu.be wp.me dlvr.it ift.tt short.io shorturl.com tiny.one gg.gg
    t2m.io urlz.fr shrtco.de 0rz.tw kutt.it lnk.to linktr.ee bit.ws han.gl me2.do""".split()
)

# A few characters that scripts share in shape with Latin ones (a small slice of Unicode's
# confusables), to say "looks like your domain" instead of only "is not your domain".
_CONFUSABLE = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ԁ": "d",
        "ӏ": "l", "ѕ": "s", "ԛ": "q", "ԝ": "w", "һ": "h", "к": "k", "м": "m", "т": "t", "в": "b", "н": "h",
        "ο": "o", "α": "a", "ν": "v", "ι": "i", "κ": "k", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ε": "e",
        "0": "o", "1": "l", "ı": "i", "ɡ": "g", "ℓ": "l",
    }
)  # fmt: skip


def _skeleton(host: str) -> str:
    host = unicodedata.normalize("NFKD", host.casefold())
    host = "".join(ch for ch in host if not unicodedata.combining(ch)).translate(_CONFUSABLE)
    return host.replace("rn", "m").replace("vv", "w").replace("-", "")


def domain_normalize(value: str) -> str | None:
    """A host name in its ASCII (IDNA) form, lower case, without a trailing dot; None if it is not
    a valid host name."""
    host = _normal(value or "").strip().rstrip(".").lower()
    if not host or len(host) > 253 or any(ch in host for ch in "/:@ \t\n?#\\"):
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_host.split(".")
    if len(labels) < 2 or not all(re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None
    return ascii_host


def _display_host(ascii_host: str) -> str:
    try:
        return ascii_host.encode("ascii").decode("idna")
    except UnicodeError:
        return ascii_host


_SCHEME = re.compile(rf"(?i)({_SCHEMES}):|([a-z][a-z0-9+.\-]{{1,30}})://")


def _link_problem(found: str, *, official: str) -> str | None:
    """Why this URL-like text may not be in a message, or None when it leads to the official domain."""
    text = found.rstrip(".,;:!?)»”’\"'")
    scheme_match = _SCHEME.match(text)
    if scheme_match:
        scheme = (scheme_match.group(1) or scheme_match.group(2)).lower()
        if scheme not in ("http", "https"):
            return f"“{_short(text)}”: a {scheme}: link. Messages link only to {{link}} and your official domain."
        if scheme == "http":
            return f"“{_short(text)}”: links must use https."
        try:
            netloc = urlsplit(text).netloc
        except ValueError:
            return f"“{_short(text)}” is not a valid address."
        if not netloc:
            return f"“{_short(text)}” is not a valid address."
    else:
        head = re.split(r"[/?#]", text, maxsplit=1)[0]
        if "@" in head:
            local, _, host = head.rpartition("@")
            if domain_normalize(local.split(":")[0]):
                # A scheme-less userinfo trick: official.example@evil.example opens evil.example.
                return f"“{_short(text)}”: everything before “@” is ignored by a browser; this leads to {host}."
            return _host_problem(host.split(":")[0], text=text, official=official, what="an e-mail address")
        netloc = head
    if "@" in netloc:
        host = netloc.rsplit("@", 1)[1].split(":")[0]
        return f"“{_short(text)}”: the part before “@” is ignored by browsers; this link leads to {host}."
    host, _, port = netloc.partition(":")
    if port and port != "443":
        return f"“{_short(text)}”: a link with a port number ({port})."
    return _host_problem(host, text=text, official=official, what="a link")


def _host_problem(host: str, *, text: str, official: str, what: str) -> str | None:
    if re.fullmatch(_IPV4, host or ""):
        return f"“{_short(text)}”: a link to an IP address. Messages link only to {{link}} and your official domain."
    normal = domain_normalize(host)
    if normal is None:
        return f"“{_short(text)}” is not a valid address."
    if normal in SHORTENERS:
        return f"“{_short(text)}”: link shorteners hide where a link leads. Use {{link}} or your official domain."
    if official and (normal == official or normal.endswith("." + official)):
        return None
    if not official:
        return (
            f"“{_short(text)}”: no official domain is set for this client, so {what} can only be {{link}}. "
            "Set the official domain in the message settings first."
        )
    if normal.startswith("xn--") or ".xn--" in normal or normal != host.lower().rstrip("."):
        if _skeleton(_display_host(normal)) == _skeleton(_display_host(official)):
            return f"“{_short(text)}” imitates {official} with look-alike characters."
        return f"“{_short(text)}” is an internationalised domain ({normal}), not {official}."
    if _skeleton(normal) == _skeleton(official):
        return f"“{_short(text)}” imitates {official} with look-alike characters."
    if official in normal:
        return f"“{_short(text)}” leads to {normal}, which is not {official} (only its subdomains are)."
    return f"“{_short(text)}” leads to {normal}. Messages link only to {{link}} and {official}."


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "…"


def link_problems(text: str, *, official: str) -> list[str]:
    """Every URL-like thing in `text` that does not lead to the official domain."""
    text = _normal(text)
    problems: list[str] = []
    taken: list[tuple[int, int]] = []
    for pattern in (_SCHEME_URL, _BARE):
        for match in pattern.finditer(text):
            if any(start <= match.start() < end for start, end in taken):
                continue
            taken.append(match.span())
            problem = _link_problem(match.group(0), official=official)
            if problem:
                problems.append(problem)
    if re.search(r"(?i)\bwww\s*\.", text) and not problems and not taken:
        problems.append("“www.” starts a web address. Messages link only to {link} and your official domain.")
    return problems


def phone_problems(text: str) -> list[str]:
    out = []
    for match in _PHONE.finditer(_normal(text)):
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) >= 8 or (match.group(0).startswith("+") and len(digits) >= 6):
            out.append(
                f"“{match.group(0).strip()}” looks like a phone number. Give support's number through "
                "{support}: it comes from the client's settings, in one audited place."
            )
    return out


# ----------------------------------------------------------------------------- requests for secrets

_SECRET_WORDS = {
    # password class
    "password": "password", "passwords": "password", "passwd": "password", "pwd": "password",
    "passphrase": "password", "passcode": "code", "passcodes": "code", "credentials": "password",
    "contrasena": "password", "contrasenas": "password", "clave": "password", "claves": "password",
    "mdp": "password", "identifiants": "password", "passwort": "password", "kennwort": "password",
    "zugangsdaten": "password", "senha": "password", "senhas": "password", "parola": "password",
    # code class
    "code": "code", "codes": "code", "pin": "code", "pins": "code", "otp": "code", "otps": "code", "tan": "code",
    "cvv": "code", "cvc": "code", "cvv2": "code", "codigo": "code", "codigos": "code", "codice": "code",
    "einmalcode": "code", "bestatigungscode": "code", "sicherheitscode": "code", "cryptogramme": "code",
    "token": "code", "2fa": "code", "mfa": "code",
}  # fmt: skip
_SECRET_PHRASES = {
    ("mot", "de", "passe"): "password", ("mots", "de", "passe"): "password", ("card", "number"): "code",
    ("numero", "de", "tarjeta"): "code", ("numero", "de", "carte"): "code", ("login", "details"): "password",
    ("security", "answer"): "password", ("one", "time", "password"): "code", ("pass", "word"): "password",
}  # fmt: skip

_REQUEST_VERBS = frozenset(
    """send sends sending sent reply replies replying respond responding text texting tell telling give giving
    share sharing provide providing enter entering type typing submit submitting confirm confirming verify
    read forward say dictate disclose reveal input ask asks asking request requests requesting key supply
    envia envie envies enviar envianos envienos envie mandar manda mande mandanos responda responde responder
    contesta conteste dinos diganos digame dime decir diga compartir comparte comparta compartas introduce
    introduzca introducir ingresa ingrese ingresar escribe escriba teclea teclee digite confirma confirme
    confirmar verifica verifique proporciona proporcione proporcionar facilita facilite facilitar indique
    indica reenvia reenvie lee leanos dicte dictar pedir pide pedira pediremos pedimos pedirle solicita
    solicite solicitar solicitara solicitaremos necesitamos
    envoyez envoyer envoie envoyer renvoyez repondez repondre reponds donnez donner donne communiquez
    communiquer partagez partager partage saisissez saisir entrez entrer tapez taper confirmez confirmer
    verifiez indiquez indiquer transmettez transmettre dites dire lisez lire dictez demander demandera
    demanderons demandons demande demandent fournissez fournir
    senden sende schicken schicke nennen nenne geben gib geben teilen teile eingeben bestatigen bestatige
    antworten antworte mitteilen teilen fragen fragt frage verlangen verlangt fordern fordert
    envie enviar responda diga digite informe informar compartilhe compartilhar confirme pedir pediremos
    pede solicitar solicitamos forneca fornecer
    inviare invia invii rispondi comunica condividi inserisci conferma chiedere chiederemo chiede""".split()
)
_ASK_VERBS = frozenset(
    """ask asks asking request requests requesting need demand pedir pide pedira pediremos pedimos pedirle
    solicita solicitara solicitaremos solicitar demander demandera demanderons demandons demande demandent
    fragen fragt verlangen verlangt fordern fordert pede solicitamos chiedere chiederemo chiede call""".split()
)
_NEGATIONS = frozenset(
    """never not dont don doesn didn won wont isn shouldn cannot cant no nobody noone neither nor nothing
    nunca jamas nadie ni ningun ninguno jamais ne n pas personne aucun aucune rien nie niemals nicht kein
    keine keinen niemand nao ninguem nem mai non nessuno""".split()
)
_CANCELLERS = frozenset(
    """forget hesitate fail delay wait mind ignore hang miss worry panic stop olvide olvides olvidar dude dudes
    dudar tarde tardes ignore oubliez oublie oublier hesitez tardez attendez ignorez vergessen vergiss zogern
    warten esqueca esquecer hesite deixe dimenticare esitare""".split()
)
_EXCEPTIONS = frozenset(
    """except excepting besides unless apart only excepto salvo menos sauf hormis excepte ausser exceto solo
    seulement uniquement nur apenas somente tranne""".split()
)
_WANT_VERBS = frozenset(
    "need needs want wants require requires necesitamos necesito besoin brauchen precisamos".split()
)
_DETERMINERS = frozenset("your the a that this su el la de votre le ihren ihre den o a seu sua".split())
_US = frozenset("us our we me ourselves nous nosotros nos uns mir noi".split())
_PRONOUNS = frozenset("it them lo los las le les lui ihn ihm os".split())
_QUESTIONS = (("what", "is"), ("whats",), ("cual", "es"), ("quel", "est"), ("quelle", "est"), ("was", "ist"),
              ("qual", "e"), ("qual", "o"))  # fmt: skip
_CONJUNCTIONS = frozenset("but however although though yet pero mais cependant pourtant aber doch mas porem ma".split())

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})


def _tokens(clause: str) -> list[str]:
    words = re.findall(r"[\w@$]+", clause)
    # "p a s s w o r d", "c.o.d.e": runs of single letters are one word.
    out: list[str] = []
    run: list[str] = []
    for word in words:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if len(run) >= 3:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        out.append(word)
    out.extend(["".join(run)] if len(run) >= 3 else run)
    return out


def _secret_at(tokens: list[str], i: int) -> tuple[str, int] | None:
    """(class, length) of a secret word or phrase starting at tokens[i]."""
    for phrase, kind in _SECRET_PHRASES.items():
        if tuple(tokens[i : i + len(phrase)]) == phrase:
            return kind, len(phrase)
    word = tokens[i]
    for candidate in (word, word.translate(_LEET), word.translate(_LEET).replace("i", "l")):
        if candidate in _SECRET_WORDS:
            return _SECRET_WORDS[candidate], 1
    return None


def _clauses(text: str) -> list[tuple[str, str]]:
    """Sentences and clauses, as written and folded: split at . ! ? ; : and line breaks, and at
    "but"-like conjunctions (except "but us", which is an exception: "with anyone but us")."""
    pieces = re.split(r"[.!?;:\n¡¿]+|\s[-–—]\s", _normal(text))
    out: list[tuple[str, str]] = []
    for piece in pieces:
        words = piece.split()
        folded = [_fold(word) for word in words]
        current: list[int] = []
        for index, word in enumerate(folded):
            bare = re.sub(r"\W", "", word)
            following = re.sub(r"\W", "", folded[index + 1]) if index + 1 < len(folded) else ""
            if bare in _CONJUNCTIONS and following not in _US and current:
                out.append((" ".join(words[i] for i in current), " ".join(folded[i] for i in current)))
                current = []
                continue
            current.append(index)
        if current:
            out.append((" ".join(words[i] for i in current), " ".join(folded[i] for i in current)))
    return out


@dataclass
class _Clause:
    tokens: list[str]
    secrets: dict[int, str]  # position → class
    requests: list[int]  # positions of request verbs
    exception: bool


def _analyse(clause: str) -> _Clause:
    tokens = _tokens(clause)
    secrets: dict[int, str] = {}
    i = 0
    while i < len(tokens):
        found = _secret_at(tokens, i)
        if found:
            secrets[i] = found[0]
            i += found[1]
        else:
            i += 1
    requests = [i for i, token in enumerate(tokens) if token in _REQUEST_VERBS]
    # "We need your code", "necesitamos su código": wanting the thing itself, not "you need to".
    requests += [i for i in range(len(tokens) - 1) if tokens[i] in _WANT_VERBS and tokens[i + 1] in _DETERMINERS]
    for i in range(len(tokens)):
        for question in _QUESTIONS:
            if tuple(tokens[i : i + len(question)]) == question:
                requests.append(i)
    pairs = list(zip(tokens, tokens[1:], strict=False))
    exception = (
        any(token in _EXCEPTIONS for token in tokens)
        or any(a in ("other", "autre", "otra", "otro") and b in ("than", "que") for a, b in pairs)
        or any(a == "but" and b in _US for a, b in pairs)
    )
    return _Clause(tokens, secrets, sorted(set(requests)), exception)


def _negated(clause: _Clause, position: int) -> bool:
    """A request verb is negated by a negation earlier in its clause with no cancelling verb
    between them ("don't forget to send"), or right after it ("fragt Sie nie")."""
    if clause.exception:
        return False
    tokens = clause.tokens
    for i in range(position - 1, -1, -1):
        if tokens[i] in _CANCELLERS:
            return False
        if tokens[i] in _NEGATIONS:
            return True
    return any(token in _NEGATIONS for token in tokens[position + 1 : position + 3])


_COPULAS = frozenset("was is were wasn isn etait est fue era es war ist foi".split())
_OBJECT_WINDOW = 6  # "send us your one-time code": the secret within six words after the verb


def _points_at_secret(clause: _Clause, position: int, *, previous_secret: bool) -> bool:
    if any(position < s <= position + _OBJECT_WINDOW for s in clause.secrets):
        return True
    # "... your code. Reply with it": a pronoun after the verb, a secret just before.
    if previous_secret or any(s < position for s in clause.secrets):
        tokens = clause.tokens
        for i in range(position + 1, min(position + 3, len(tokens))):
            if tokens[i] in _PRONOUNS and (i + 1 >= len(tokens) or tokens[i + 1] not in _COPULAS):
                return True
    return False


def secret_requests(text: str) -> list[str]:
    """The clauses of `text` that ask for a password or a code, as written."""
    found = []
    previous_secret = False
    for shown, folded in _clauses(text):
        clause = _analyse(folded)
        for position in clause.requests:
            if _points_at_secret(clause, position, previous_secret=previous_secret) and not _negated(clause, position):
                found.append(shown)
                break
        previous_secret = bool(clause.secrets)
    return found


def has_disclaimer(text: str) -> bool:
    """Whether `text` says staff never ask for a code or a password: a clause in which an asking
    verb is negated, both a code and a password are named, and nothing is asked for."""
    for _, folded in _clauses(text):
        clause = _analyse(folded)
        if not {"code", "password"} <= set(clause.secrets.values()):
            continue
        asks = [i for i, token in enumerate(clause.tokens) if token in _ASK_VERBS]
        if asks and all(_negated(clause, i) for i in asks) and all(_negated(clause, i) for i in clause.requests):
            return True
    return False


# ----------------------------------------------------------------------------- the check


@dataclass
class CheckResult:
    errors: dict[str, list[str]] = field(default_factory=dict)
    sms: SmsLength | None = None  # the longest the SMS can be (every value at its cap)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, name: str, message: str) -> None:
        messages = self.errors.setdefault(name, [])
        if message not in messages:
            messages.append(message)


def worst_values(*, alert_type: str, locale: str, channel: str) -> dict[str, str]:
    """Every placeholder at the longest it can be: the check's SMS and length budget."""
    values = {name: "x" * cap for name, cap in caps_for(channel).items()}
    values["what"] = max(what_phrases(alert_type=alert_type, locale=locale), key=len)
    values["device"] = "x" * device_cap(locale)
    values["where"] = "x" * min(where_cap(locale, channel), len(values["where"]))
    return values


def template_check(
    *, alert_type: str, channel: str, locale: str, subject: str, body: str, official_domain: str = ""
) -> CheckResult:
    """Check one template; `result.errors` maps the field ("subject", "body", "locale") to messages."""
    result = CheckResult()
    official = domain_normalize(official_domain) if official_domain else ""
    if channel not in CHANNELS:
        result.add("channel", "Unknown channel.")
        return result
    if locale_normalize(locale) is None:
        result.add("locale", "Not a language tag: use a BCP 47 tag such as en, fr or fr-CA.")
    fields = {"subject": subject or "", "body": body or ""}
    if channel not in SUBJECT_CHANNELS and fields["subject"].strip():
        result.add("subject", f"{channel.upper() if channel == 'sms' else channel.title()} messages have no subject.")
    if channel in SUBJECT_CHANNELS and not fields["subject"].strip():
        result.add("subject", "A push needs a title." if channel == "push" else "An e-mail needs a subject.")
    if not fields["body"].strip():
        result.add("body", "The message is empty.")
        return result

    parsed = {}
    for name, text in fields.items():
        hidden = _invisible(text)
        if hidden:
            result.add(name, f"Invisible or control characters ({', '.join(hidden)}) can hide what a message says.")
        parsed[name] = placeholders.parse(text)
        for message in parsed[name].errors:
            result.add(name, message)
        # Placeholders become a plain letter, so "{tenant}.com" or "https://{link}" shows as the
        # link it would make.
        scan = parsed[name].literal_text(stand_in="x")
        for message in link_problems(scan, official=official):
            result.add(name, message)
        for message in phone_problems(parsed[name].literal_text(stand_in=" ")):
            result.add(name, message)
        for clause in secret_requests(parsed[name].literal_text(stand_in=" ")):
            result.add(name, f"Asks for a password or a code (“{_short(clause)}”). Messages must never do that.")

    names = parsed["body"].names
    if "link" in parsed["subject"].names:
        result.add("subject", "The answer link {link} belongs in the message, not its subject.")
    if channel == "voice" and "link" in names:
        result.add("body", "A call cannot carry a link: say that a text message or e-mail with the link follows.")
    if channel in LINK_CHANNELS and alert_type not in KINDS_WITHOUT_LINK and "link" not in names:
        result.add("body", "Add the answer link {link}: it is how the customer tells us whether it was them.")
    if channel in SUPPORT_REQUIRED and alert_type not in KINDS_WITHOUT_LINK and "support" not in names:
        result.add("body", "Add {support}: say how to reach the client's official support.")
    if not has_disclaimer(parsed["body"].literal_text(stand_in=" ")):
        result.add(
            "body",
            "Say that staff will never ask for a code or password, e.g. “{tenant} staff will never ask you "
            "for a code or password.”",
        )
    if result.errors.get("subject") and any("placeholder" in m for m in result.errors["subject"]):
        return result
    if any(parsed[name].errors for name in parsed):
        return result

    worst = worst_values(alert_type=alert_type, locale=locale, channel=channel)
    rendered = {name: placeholders.render(parsed[name], worst) for name in parsed}
    for name in ("subject", "body"):
        limit = LIMITS[name].get(channel)
        if limit and len(rendered[name]) > limit:
            result.add(
                name,
                f"Too long: up to {len(rendered[name])} characters with the longest values; keep it under {limit}.",
            )
    if channel == "sms":
        # As message_build does: values are folded to GSM-7 when the template's own text is GSM-7.
        if is_gsm7(parsed["body"].literal_text()):
            rendered["body"] = placeholders.render(parsed["body"], fold_values(worst))
        result.sms = sms_length(rendered["body"])
        if result.sms.segments > SMS_MAX_SEGMENTS:
            detail = (
                f" The text uses UCS-2 because of {result.sms.describe_ucs2()}: each segment then holds 67 "
                "characters instead of 153."
                if result.sms.encoding == "UCS-2"
                else ""
            )
            result.add(
                "body",
                f"Too long for an SMS: up to {result.sms.segments} segments with the longest values "
                f"({result.sms.units} {'characters' if result.sms.encoding == 'UCS-2' else 'GSM-7 units'}); "
                f"{SMS_MAX_SEGMENTS} at most.{detail}",
            )
    return result
