"""A small corpus for the search tests, and the best result of a query."""

from __future__ import annotations

# A small corpus: location -> (title, [(heading, html text)], front matter).
PAGES = {
    "maintenance/prices/": ("Остановилась загрузка цен", [
        ("Симптомы", "<p>Новые цены не доходят до касс магазина.</p>"),
        ("Что проверить", "<p>Веб-сервис <code>SOAP</code> на порту 8090, пакет в BASE64 &amp; XML.</p>")],
        {"description": "Что делать, если цены перестали загружаться.", "keywords": ["импорт цен"]}),
    "maintenance/conservation/": ("Консервация кассы", [
        ("Расконсервация", "<p>Расконсервация возвращает кассу на линию. Ёлка и ёж.</p>")],
        {"description": "Вывести кассу из работы.", "keywords": ["касса в ремонте"]}),
    "launches/store/": ("Запуск магазина", [
        ("Порядок", "<p>Сначала Set10 Centrum, затем сервер магазина, затем кассы.</p>"),
        ("Опасно", "<p>Не вставляйте &lt;script&gt;alert(1)&lt;/script&gt; в поля.</p>")],
        {"description": "Чек-лист запуска.", "keywords": ["открытие магазина", "сервак"]}),
    "claim-desk/logs/": ("Логи кассы", [("Где лежат", "<p>Каталог crystal-cash/logs.</p>")],
                         {"description": "Что приложить.", "keywords": ["лог-файлы"]}),
}


def top(index, query):
    """The article of the best result (also when it points at a heading in it), or None."""
    results = index.search(query)
    return results[0]["location"].partition("#")[0] if results else None
