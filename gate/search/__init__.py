"""Search that understands Russian: one index per edition, and the query engine. No Flask here.

Words are lemmatised with pymorphy3, ё is folded to е, Latin terms (Set10, ERP, SOAP, XML,
BASE64) stay as lower-cased tokens; ranking is BM25F; typos are corrected within the edition's
own vocabulary. One module per concern:

- `analysis`: words to index terms (tokens, lemmas, spellings, stems), for articles and queries;
- `synonyms`: search-synonyms.yml (spellings and synonyms support staff extend), checked;
- `index`: the per-edition index, built from one built edition, written and read back;
- `typos`: corrections and completions within an edition's vocabulary;
- `engine`: `SearchIndex`, a query's words and BM25F ranking;
- `snippets`: a result's title and snippet, escaped, with the found words marked;
- `query`: what the endpoint accepts, and a query's form among search gaps.

This module is the API the rest of the gate uses: `gate build` writes the indexes,
`gate.views.search` loads and queries them.
"""

from gate.search.analysis import lemma
from gate.search.engine import MAX_RESULTS, SearchIndex
from gate.search.index import INDEX_FILE, MATERIAL_INDEX, write_index
from gate.search.query import MAX_QUERY, BadQuery, check_query, normalize_query
from gate.search.synonyms import SYNONYMS_FILE, Synonyms, SynonymsError, load_synonyms

__all__ = [
    "INDEX_FILE", "MATERIAL_INDEX", "MAX_QUERY", "MAX_RESULTS", "SYNONYMS_FILE",
    "BadQuery", "SearchIndex", "Synonyms", "SynonymsError",
    "check_query", "lemma", "load_synonyms", "normalize_query", "write_index",
]
