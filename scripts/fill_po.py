"""Fill missing translations of a .po catalog from a Python dict file (used when adding strings).

python scripts/fill_po.py src/rapport/locale/es/LC_MESSAGES/messages.po translations.py
"""

import runpy
import sys

from babel.messages.pofile import read_po, write_po

po_path, dict_path = sys.argv[1], sys.argv[2]
table = runpy.run_path(dict_path)["ES"]
with open(po_path, "rb") as handle:
    catalog = read_po(handle)
for key, value in table.items():
    if key not in catalog:
        catalog.add(key, value)
for message in catalog:
    if message.id and not message.string and message.id in table:
        message.string = table[message.id]
with open(po_path, "wb") as handle:
    write_po(handle, catalog, sort_output=True, omit_header=False, width=100)
missing = [m.id for m in catalog if m.id and not m.string]
print(f"{len(missing)} missing", *missing[:20], sep="\n  ")
