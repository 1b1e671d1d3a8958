-- The conformance fixture: loaded as the cluster superuser into a freshly provisioned project database.
CREATE TABLE authors (id int PRIMARY KEY, name text NOT NULL, country text, bio jsonb, born date);
COMMENT ON TABLE authors IS 'People who write books';
CREATE TABLE books (
  id int PRIMARY KEY,
  title text NOT NULL,
  author_id int REFERENCES authors(id),
  pages int,
  price numeric(6,2),
  published boolean NOT NULL DEFAULT false,
  genres text[] NOT NULL DEFAULT '{}',
  released daterange,
  summary text,
  search tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(summary, ''))) STORED
);
CREATE TABLE tags (id int PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE book_tags (
  book_id int REFERENCES books(id),
  tag_id int REFERENCES tags(id),
  PRIMARY KEY (book_id, tag_id)
);
CREATE TABLE employees (id int PRIMARY KEY, name text NOT NULL, manager_id int REFERENCES employees(id));
CREATE TABLE addresses (id int PRIMARY KEY, line text NOT NULL);
CREATE TABLE orders (
  id int PRIMARY KEY,
  name text NOT NULL,
  billing_id int CONSTRAINT billing REFERENCES addresses(id),
  shipping_id int CONSTRAINT shipping REFERENCES addresses(id)
);
CREATE TABLE notes (
  id serial PRIMARY KEY,
  body text NOT NULL DEFAULT 'empty',
  author_id int REFERENCES authors(id),
  rating int DEFAULT 3
);
CREATE TABLE kv (k text PRIMARY KEY, v text);
CREATE TABLE secrets (id int PRIMARY KEY, owner uuid NOT NULL, value text NOT NULL);
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON secrets USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
CREATE TABLE readonly_things (id int PRIMARY KEY);
REVOKE ALL ON readonly_things FROM anon;
GRANT SELECT ON readonly_things TO anon;

INSERT INTO authors VALUES
  (1, 'Ursula K. Le Guin', 'US', '{"awards": {"hugo": 5}, "langs": ["en"]}', '1929-10-21'),
  (2, 'Stanisław Lem', 'PL', '{"awards": {"hugo": 0}, "langs": ["pl", "en"]}', '1921-09-12'),
  (3, 'Octavia E. Butler', 'US', NULL, '1947-06-22'),
  (4, 'Nobody', NULL, NULL, NULL);
INSERT INTO books (id, title, author_id, pages, price, published, genres, released, summary) VALUES
  (1, 'The Left Hand of Darkness', 1, 304, 9.99, true, '{scifi,classic}', '[1969-01-01,1970-01-01)', 'An envoy visits a winter planet whose people have no fixed gender'),
  (2, 'The Dispossessed', 1, 387, 12.50, true, '{scifi,utopia}', '[1974-01-01,1975-01-01)', 'A physicist travels between an anarchist moon and its planet'),
  (3, 'Solaris', 2, 204, 8.00, true, '{scifi}', '[1961-01-01,1962-01-01)', 'Scientists study a living ocean planet'),
  (4, 'The Cyberiad', 2, 295, NULL, false, '{humor,scifi}', NULL, 'Robot constructors build machines'),
  (5, 'Kindred', 3, 264, 11.00, true, '{historical}', '[1979-01-01,1980-01-01)', 'A woman is pulled back in time'),
  (6, 'Anonymous Pamphlet', NULL, 12, 1.00, false, '{}', NULL, NULL);
INSERT INTO tags VALUES (1, 'classic'), (2, 'award'), (3, 'favourite');
INSERT INTO book_tags VALUES (1, 1), (1, 2), (2, 2), (3, 1), (5, 3);
INSERT INTO employees VALUES (1, 'Ada', NULL), (2, 'Bob', 1), (3, 'Cy', 1), (4, 'Di', 2);
INSERT INTO addresses VALUES (1, 'Billing St 1'), (2, 'Shipping Rd 2');
INSERT INTO orders VALUES (1, 'Lamp', 1, 2);
INSERT INTO notes (body, author_id, rating) VALUES ('first', 1, 5), ('second', 2, 4);
INSERT INTO kv VALUES ('a', '1'), ('b', '2');
INSERT INTO secrets VALUES
  (1, '11111111-1111-1111-1111-111111111111', 'alice secret'),
  (2, '22222222-2222-2222-2222-222222222222', 'bob secret');
INSERT INTO readonly_things VALUES (1);

CREATE VIEW book_titles AS SELECT id, title, author_id FROM books;
CREATE VIEW us_authors AS SELECT id, name FROM authors WHERE country = 'US';

CREATE FUNCTION add_them(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE FUNCTION books_by(author int) RETURNS SETOF books LANGUAGE sql STABLE AS
  $$ SELECT * FROM books WHERE author_id = author ORDER BY id $$;
CREATE FUNCTION book_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM books $$;
CREATE FUNCTION noop() RETURNS void LANGUAGE sql VOLATILE AS $$ SELECT $$;
CREATE FUNCTION echo_json(json) RETURNS json LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
CREATE FUNCTION sum_all(VARIADIC nums int[]) RETURNS int LANGUAGE sql IMMUTABLE AS
  $$ SELECT coalesce(sum(n), 0)::int FROM unnest(nums) n $$;
CREATE FUNCTION overloaded(a int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'one ' || a $$;
CREATE FUNCTION overloaded(a int, b int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'two ' || (a + b) $$;
CREATE FUNCTION ambiguous(x int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'int' $$;
CREATE FUNCTION ambiguous(x text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'text' $$;
CREATE FUNCTION get_author(aid int) RETURNS authors LANGUAGE sql STABLE AS $$ SELECT * FROM authors WHERE id = aid $$;
CREATE FUNCTION with_default(a int, b int DEFAULT 10) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE FUNCTION genre_list() RETURNS SETOF text LANGUAGE sql STABLE AS
  $$ SELECT DISTINCT unnest(genres) FROM books ORDER BY 1 $$;
CREATE FUNCTION search_books(q text) RETURNS TABLE(id int, title text) LANGUAGE sql STABLE AS
  $$ SELECT b.id, b.title FROM books b WHERE b.title ILIKE '%' || q || '%' ORDER BY b.id $$;
CREATE FUNCTION payment_required() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE sqlstate 'PT402' USING message = 'Payment Required', detail = 'Quota exceeded', hint = 'Upgrade your plan';
END $$;
CREATE FUNCTION custom_error() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE sqlstate 'PGRST' USING
    message = '{"code":"123","message":"Teapot","details":"short and stout","hint":"pour"}',
    detail = '{"status":418,"headers":{"X-Powered-By":"Nerd Rage"}}';
END $$;
CREATE FUNCTION just_fail() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'I refuse!' USING DETAIL = 'Pretty simple', HINT = 'There is nothing you can do.';
END $$;
CREATE FUNCTION set_response() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('response.headers', '[{"X-Custom": "yes"}, {"Cache-Control": "no-store"}]', true);
  PERFORM set_config('response.status', '202', true);
  RETURN 1;
END $$;
CREATE FUNCTION request_info() RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'method', current_setting('request.method', true),
    'path', current_setting('request.path', true),
    'agent', current_setting('request.headers', true)::json->>'x-test-header',
    'cookie', current_setting('request.cookies', true)::json->>'flavour',
    'role', current_user,
    'sub', auth.jwt()->>'sub')
$$;
CREATE FUNCTION add_note(body text) RETURNS notes LANGUAGE sql VOLATILE AS
  $$ INSERT INTO notes (body) VALUES (body) RETURNING * $$;
CREATE FUNCTION sum_json(payload jsonb) RETURNS int LANGUAGE sql IMMUTABLE AS
  $$ SELECT (payload->>'a')::int + (payload->>'b')::int $$;
CREATE FUNCTION arr_len(items int[]) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT cardinality(items) $$;
-- Computed fields and relationships: functions of a row.
CREATE FUNCTION display_name(authors) RETURNS text LANGUAGE sql STABLE AS
  $$ SELECT $1.name || coalesce(' (' || $1.country || ')', '') $$;
-- The same name on another relation: a record passed without its type would be ambiguous.
CREATE FUNCTION display_name(books) RETURNS text LANGUAGE sql STABLE AS $$ SELECT upper($1.title) $$;
CREATE FUNCTION title_words(books) RETURNS tsvector LANGUAGE sql IMMUTABLE AS
  $$ SELECT to_tsvector('english', $1.title) $$;
CREATE FUNCTION top_book(authors) RETURNS SETOF books ROWS 1 LANGUAGE sql STABLE AS
  $$ SELECT * FROM books WHERE author_id = $1.id ORDER BY pages DESC NULLS LAST LIMIT 1 $$;
CREATE FUNCTION long_books(authors) RETURNS SETOF books LANGUAGE sql STABLE AS
  $$ SELECT * FROM books WHERE author_id = $1.id AND pages > 250 $$;
CREATE FUNCTION first_author(tags) RETURNS authors LANGUAGE sql STABLE AS
  $$ SELECT a.* FROM authors a JOIN books b ON b.author_id = a.id JOIN book_tags bt ON bt.book_id = b.id
     WHERE bt.tag_id = $1.id ORDER BY a.id LIMIT 1 $$;
-- A computed relationship named like a detected one replaces it (the hint still reaches the key).
CREATE TABLE shelves (id int PRIMARY KEY, label text NOT NULL);
CREATE TABLE shelf_books (id int PRIMARY KEY, shelf_id int REFERENCES shelves(id), title text NOT NULL);
INSERT INTO shelves VALUES (1, 'top');
INSERT INTO shelf_books VALUES (1, 1, 'shown'), (2, 1, 'hidden');
CREATE FUNCTION shelf_books(shelves) RETURNS SETOF shelf_books LANGUAGE sql STABLE AS
  $$ SELECT * FROM shelf_books WHERE shelf_id = $1.id AND title <> 'hidden' $$;
-- Time zones: the database's default is UTC; `Prefer: timezone=` changes it for one request.
CREATE TABLE events (id int PRIMARY KEY, at timestamptz NOT NULL);
INSERT INTO events VALUES (1, '2024-01-01 12:00:00+00');
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'UTC'); END $$;
-- Round two: identity columns, a relation without a primary key, ambiguous keys created out of
-- alphabetical order (the ambiguity error lists them sorted all the same).
CREATE TABLE items (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL, qty int DEFAULT 1);
CREATE TABLE logs (msg text);
CREATE TABLE routes (
  id int PRIMARY KEY,
  z_to int CONSTRAINT z_dest REFERENCES addresses(id),
  a_from int CONSTRAINT a_origin REFERENCES addresses(id),
  m_via int CONSTRAINT m_via REFERENCES addresses(id)
);
INSERT INTO routes VALUES (1, 2, 1, 1);
-- Fresh statistics: `count=estimated` takes the planner's estimate when it exceeds the count.
ANALYZE;
