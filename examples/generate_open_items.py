"""Write ``examples/open-items.csv``: invented Dutch debtors and their open invoices.

The file looks like a typical Dutch open-items export: ``;``-separated, decimal comma,
``dd-mm-yyyy`` dates, UTF-8 with BOM, CRLF line ends. Seeded, so every run writes the same
bytes. Dates are relative to 2026-11-23, giving every aging bucket a share. Some older
invoices were already dunned (``Aanmaningsniveau`` and ``Laatste aanmaning``, as Exact Online
exports them). Three rows are broken on purpose and one debtor has an unusable e-mail address;
``tests/test_csv.py`` asserts exactly those rejects.

    python examples/generate_open_items.py [OUTPUT]
"""

from __future__ import annotations

import argparse
import csv
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from debsync.model import normalise_iban, normalise_phone

TODAY = date(2026, 11, 23)
FIRST_ISSUE = date(2026, 6, 1)
SEED = 2026

HEADER = (
    "Relatiecode", "Naam", "Soort", "E-mail", "Telefoon", "Adres", "Postcode", "Plaats",
    "KvK-nummer", "BTW-nummer", "IBAN", "Taal", "Factuurnummer", "Factuurdatum",
    "Vervaldatum", "Bedrag", "Openstaand", "Betalingskenmerk", "Betaalwijze",
    "Aanmaningsniveau", "Laatste aanmaning",
)  # fmt: skip

# City, postcode range, area code.
CITIES = (
    ("Amsterdam", 1011, 1109, "020"),
    ("Rotterdam", 3011, 3089, "010"),
    ("Den Haag", 2491, 2597, "070"),
    ("Utrecht", 3511, 3585, "030"),
    ("Eindhoven", 5611, 5658, "040"),
    ("Groningen", 9711, 9747, "050"),
    ("Zwolle", 8011, 8046, "038"),
    ("Haarlem", 2011, 2037, "023"),
    ("Leiden", 2311, 2334, "071"),
    ("Arnhem", 6811, 6846, "026"),
    ("Nijmegen", 6511, 6546, "024"),
    ("Tilburg", 5011, 5049, "013"),
    ("Amersfoort", 3811, 3829, "033"),
    ("Delft", 2611, 2629, "015"),
    ("Maastricht", 6211, 6229, "043"),
)
STREETS = (
    "Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenstraat", "Hoofdstraat", "Julianalaan",
    "Wilhelminastraat", "Industrieweg", "Nijverheidsweg", "Marktplein", "Oudegracht",
    "Lange Nieuwstraat", "Beatrixlaan", "Parallelweg", "Prinsengracht", "Van Goghstraat",
)  # fmt: skip
BANKS = ("ABNA", "RABO", "INGB", "TRIO", "SNSB", "ASNB", "KNAB", "BUNQ")

# Name, e-mail local part, language.
BUSINESSES = (
    ("Bakkerij De Gouden Korrel B.V.", "administratie", "nl"),
    ("Installatiebedrijf Van Dijk & Zn. B.V.", "facturen", "nl"),
    ("Bloemenhandel Het Zonnetje", "info", "nl"),
    ("Café 't Hoekje V.O.F.", "info", "nl"),
    ("Schildersbedrijf De Kwast B.V.", "administratie", "nl"),
    ("Northwind Trading B.V.", "accounts", "en"),
    ("Autobedrijf Jansen Zwolle B.V.", "boekhouding", "nl"),
    ("Brasserie Zeeën B.V.", "crediteuren", "nl"),
    ("Drukkerij Gutenberg Haarlem B.V.", "inkoop", "nl"),
    ("Harbour Lights Consulting B.V.", "finance", "en"),
    ("Hoveniersbedrijf Groen & Zo", "info", "nl"),
    ("Tandartspraktijk De Molen", "praktijk", "nl"),
    ("Verhuisbedrijf Snel B.V.", "facturen", "nl"),
    ("Kaashandel Boer Kees", "bestellingen", "nl"),
    ("Studio Vormgeving Lux", "hallo", "nl"),
    ("Bouwbedrijf Van der Meer B.V.", "crediteuren", "nl"),
    ("Fietsenmakerij De Ketting", "info", "nl"),
    ("Brightwater Software B.V.", "billing", "en"),
    ("Accountantskantoor Smit & De Boer", "secretariaat", "nl"),
    ("Restaurant De Waag B.V.", "administratie", "nl"),
    ("Elektrotechniek Bos B.V.", "facturatie", "nl"),
    ("Kinderopvang Het Speelhuis B.V.", "administratie", "nl"),
    ("Transportbedrijf Visser B.V.", "finance", "nl"),
    ("Dierenkliniek Amstelland", "receptie", "nl"),
    ("Copperfield Events B.V.", "accounts", "en"),
    ("Glazenwasserij Helder", "info", "nl"),
    ("Loodgietersbedrijf Mulder", "info", "nl"),
    ("Architectenbureau Lijn & Vlak B.V.", "office", "nl"),
    ("Yoga Studio Shanti", "namaste", "nl"),
    ("Koffiebranderij De Boon B.V.", "inkoop", "nl"),
)  # fmt: skip
CONSUMERS = (
    ("J.P. de Vries", "jp.devries", "nl"),
    ("M. Jansen-Bakker", "m.jansen", "nl"),
    ("A. van den Berg", "anne.vandenberg", "nl"),
    ("S. Patel", "sanjay.patel", "en"),
    ("Ö. Yılmaz", "omer.yilmaz", "nl"),
    ("L. Bakker", "lois.bakker", "nl"),
    ("P.J. Visser", "pj.visser", "nl"),
    ("E. Novak", "eva.novak", "en"),
    ("K. de Jong", "kdejong", "nl"),
    ("R. Meijer", "r.meijer", "nl"),
    ("H.T. Smit", "hts", "nl"),
    ("C. O'Brien", "ciara.obrien", "en"),
    ("W. Hendriks", "wim.hendriks", "nl"),
    ("F. El Amrani", "f.elamrani", "nl"),
    ("D. Mulder", "dmulder", "nl"),
    ("G. Peters", "gpeters", "en"),
    ("N. Dekker", "n.dekker", "nl"),
    ("B. van Leeuwen", "bvanleeuwen", "nl"),
)  # fmt: skip


def dutch_amount(cents: int) -> str:
    euros, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{euros:,}".replace(",", ".") + f",{rest:02d}"


def mod97_check(body: str) -> int:
    """ISO 7064 check digits, as IBAN and RF creditor references use them."""
    digits = "".join(str(int(ch, 36)) for ch in body)
    return 98 - int(digits) % 97


def iban(rng: random.Random) -> str:
    """A Dutch IBAN whose account number also passes the old eleven test."""
    while True:
        account = f"{rng.randrange(10**9, 10**10):010d}"
        if sum(int(d) * w for d, w in zip(account, range(10, 0, -1), strict=True)) % 11 == 0:
            break
    bank = rng.choice(BANKS)
    text = f"NL{mod97_check(f'{bank}{account}NL00'):02d}{bank}{account}"
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def rf_reference(number: int) -> str:
    """An ISO 11649 structured creditor reference ("RF18 …")."""
    body = f"{number:08d}"
    return f"RF{mod97_check(f'{body}RF00'):02d}{body}"


@dataclass
class Debtor:
    code: str
    name: str
    business: bool
    emails: list[str]
    phone: str
    street: str
    postcode: str
    city: str
    language: str
    kvk: str = ""
    vat: str = ""
    iban: str = ""
    direct_debit: bool = False
    invoices: list[list[str]] = field(default_factory=list)

    def row(self) -> list[str]:
        return [
            self.code,
            self.name,
            "Zakelijk" if self.business else "Particulier",
            "; ".join(self.emails),
            self.phone,
            self.street,
            self.postcode,
            self.city,
            self.kvk,
            self.vat,
            self.iban,
            self.language,
        ]


def _ascii(text: str) -> str:
    """Mailbox names as businesses register them: no accents, no apostrophes."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.replace("'", "")


def make_debtors(rng: random.Random) -> list[Debtor]:
    people = [(name, local, lang, True) for name, local, lang in BUSINESSES]
    people += [(name, local, lang, False) for name, local, lang in CONSUMERS]
    rng.shuffle(people)
    debtors = []
    for n, (name, local, language, business) in enumerate(people):
        city, low, high, area = rng.choice(CITIES)
        letters = "".join(rng.choice("ABCDEGHJKLMNPRSTVWXZ") for _ in range(2))
        domain = "example.nl" if language == "nl" else "example.com"
        slug = "-".join(w for w in _ascii(name).lower().split() if w.isalpha())
        emails = [f"{local}.{slug}@{domain}" if business else f"{local}@{domain}"]
        if business and rng.random() < 0.15:
            emails.append(f"directie.{slug}@{domain}")
        if business or rng.random() < 0.3:
            phone = f"{area}-{rng.randrange(2_000_000 if len(area) == 3 else 200_000, 9_999_999)}"
        else:
            phone = f"06-{rng.randrange(10_000_000, 59_999_999)}"
        normalise_phone(phone)  # fail here, not in the example, if a number is invalid
        debtor = Debtor(
            code=f"{10001 + n * 7}",
            name=name,
            business=business,
            emails=emails,
            phone=phone,
            street=f"{rng.choice(STREETS)} {rng.randrange(1, 240)}",
            postcode=f"{rng.randrange(low, high + 1)} {letters}",
            city=city,
            language=language,
        )
        if business:
            debtor.kvk = f"{rng.randrange(10_000_000, 99_999_999)}"
            if rng.random() < 0.6:
                debtor.vat = f"NL{rng.randrange(10**8, 10**9)}B01"
        if rng.random() < 0.5:
            debtor.iban = iban(rng)
            normalise_iban(debtor.iban)
            debtor.direct_debit = rng.random() < 0.12
        debtors.append(debtor)
    return debtors


def make_rows(rng: random.Random, debtors: list[Debtor], count: int) -> list[list[str]]:
    """``count`` invoice rows: every debtor gets at least one, regulars get several."""
    weights = [rng.choice((1, 1, 2, 4, 8)) for _ in debtors]
    owners = list(debtors) + rng.choices(debtors, weights, k=count - len(debtors))
    # Recent invoices outnumber old ones, as in any ledger where most customers pay.
    span = (TODAY - FIRST_ISSUE).days
    issued = sorted(TODAY - timedelta(days=int(rng.triangular(3, span, 25))) for _ in owners)
    rng.shuffle(owners)
    rows = []
    for n, (debtor, issue) in enumerate(zip(owners, issued, strict=True), start=1):
        term = 14 if not debtor.business or rng.random() < 0.3 else 30
        total = rng.randrange(4_500, 1_250_000 if debtor.business else 95_000)
        total = total * 121 // 100  # prices incl. 21% btw
        roll = rng.random()
        if roll < 0.04:
            total = -rng.randrange(2_000, 60_000)  # a credit note
            open_ = total
        elif roll < 0.16:
            open_ = total - total * rng.choice((25, 40, 50, 60)) // 10_000 * 100  # partly paid
        else:
            open_ = total
        rows.append(
            [
                *debtor.row(),
                f"2026-{n:04d}",
                issue.strftime("%d-%m-%Y"),
                (issue + timedelta(days=term)).strftime("%d-%m-%Y"),
                dutch_amount(total),
                dutch_amount(open_),
                rf_reference(20260000 + n),
                "Automatische incasso" if debtor.direct_debit else "Overboeking",
                "",
                "",
            ]
        )
    return rows


def record_prior_steps(rng: random.Random, rows: list[list[str]]) -> None:
    """The bookkeeper dunned some older invoices before debsync took over, as an Exact-style
    export says with a level and the date of the last letter: a reminder (level 1) for four
    in ten of those 30 to 60 days overdue, and for half of those older a reminder or (one in
    five) an aanmaning (level 2). Never for credit notes or direct debits, nor after ``TODAY``."""
    due, total, method, level, sent = (
        HEADER.index("Vervaldatum"),
        HEADER.index("Bedrag"),
        HEADER.index("Betaalwijze"),
        HEADER.index("Aanmaningsniveau"),
        HEADER.index("Laatste aanmaning"),
    )
    for row in rows:
        if row[total].startswith("-") or row[method] != "Overboeking":
            continue
        day = date(*map(int, reversed(row[due].split("-"))))
        overdue, roll = (TODAY - day).days, rng.random()
        if (30 <= overdue < 60 and roll < 0.4) or (overdue >= 60 and 0.2 <= roll < 0.5):
            step, after = "1", rng.randrange(7, 22)
        elif overdue >= 60 and roll < 0.2:
            step, after = "2", rng.randrange(28, 50)
        else:
            continue
        on = min(day + timedelta(days=after), TODAY)
        row[level], row[sent] = step, on.strftime("%d-%m-%Y")


def break_rows(rows: list[list[str]], debtors: list[Debtor]) -> None:
    """The deliberate mistakes the example shows off (tests/test_csv.py counts them)."""
    due, open_, number, email = (
        HEADER.index("Vervaldatum"),
        HEADER.index("Openstaand"),
        HEADER.index("Factuurnummer"),
        HEADER.index("E-mail"),
    )
    rows[14][due] = "31-02-2026"  # an impossible date
    rows[57][open_] = "12,34,5"  # a garbled amount
    rows[101][number] = ""  # a lost invoice number
    sloppy = next(d for d in debtors if not d.business and d.language == "nl")
    for row in rows:  # an address the e-mail check drops, the debtor is kept
        if row[0] == sloppy.code:
            row[email] = sloppy.emails[0].replace("@", "(at)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "output", nargs="?", type=Path, default=Path(__file__).with_name("open-items.csv")
    )
    output = parser.parse_args().output
    rng = random.Random(SEED)
    debtors = make_debtors(rng)
    rows = make_rows(rng, debtors, 224)
    record_prior_steps(random.Random(SEED + 1), rows)  # its own stream: the rest is unchanged
    break_rows(rows, debtors)
    with output.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    print(f"wrote {len(rows)} invoice rows for {len(debtors)} debtors to {output}")


if __name__ == "__main__":
    main()
