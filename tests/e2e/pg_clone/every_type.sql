CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'application objects';
CREATE SCHEMA "Sales Dept";

CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy', 'très ☺');
CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN app.email AS citext CHECK (VALUE LIKE '%@%');
CREATE TYPE app.addr AS (street text, zip int, tags text[], mood app.mood);
COMMENT ON TYPE app.addr IS 'a postal address';
CREATE TYPE app.floatrange AS RANGE (subtype = float8);

CREATE FUNCTION app.is_even(int) RETURNS boolean IMMUTABLE LANGUAGE sql AS 'SELECT $1 % 2 = 0';
CREATE FUNCTION app.bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.note := coalesce(NEW.note, '') || ' (bumped)';
  RETURN NEW;
END $$;
COMMENT ON FUNCTION app.bump() IS 'marks rows written after the trigger exists';

CREATE TABLE app.everything (
  id bigserial PRIMARY KEY,
  i2 smallint, i4 integer, i8 bigint,
  f4 real, f8 double precision,
  n numeric, n_prec numeric(40, 20),
  b boolean,
  t text, vc varchar(50), ch char(5), tc text COLLATE "C",
  by bytea,
  j json, jb jsonb,
  ia int[], ta text[], ia2 int[], ma app.mood[],
  r4 int4range, r8 int8range, rtz tstzrange, nr numrange, dr daterange, fr app.floatrange,
  mood app.mood, pi app.posint, em app.email,
  ad app.addr, ads app.addr[],
  u uuid,
  tz timestamptz, ts timestamp, d date, tm time, ttz timetz, iv interval,
  ip inet, cidr_ cidr, mac macaddr, mac8 macaddr8,
  pt point, bx box, pg polygon, ln line, ls lseg, pa path, ci circle,
  m money,
  bt bit(8), vb varbit,
  tv tsvector, tq tsquery,
  x xml,
  hs hstore, ct citext,
  o oid, ch1 "char",
  total numeric GENERATED ALWAYS AS (coalesce(n_prec, 0) * 2) STORED,
  even_i4 int CHECK (app.is_even(even_i4))
);
COMMENT ON TABLE app.everything IS 'one column per type';
COMMENT ON COLUMN app.everything.n IS 'unconstrained numeric';

INSERT INTO app.everything (i2, i4, i8, f4, f8, n, n_prec, b, t, vc, ch, tc, by, j, jb, ia, ta, ia2, ma,
  r4, r8, rtz, nr, dr, fr, mood, pi, em, ad, ads, u, tz, ts, d, tm, ttz, iv, ip, cidr_, mac, mac8,
  pt, bx, pg, ln, ls, pa, ci, m, bt, vb, tv, tq, x, hs, ct, o, ch1, even_i4)
VALUES
 (-32768, -2147483648, -9223372036854775808, 'NaN', '-Infinity',
  'NaN', '-12345678901234567890.12345678901234567890', false,
  E'héllo wörld ☃ 🦀 日本語 \\ back\\slash\ttab\nnewline "quoted" ''single''', 'varchar ✓', 'ab', 'Zebra',
  '\x00ff10', '{"a": 1, "a": 2 ,  "b" : [1,2]}', '{"k": "v ✓", "nested": {"arr": [1, null, 2.5e10, true]}, "\u00e9": ""}',
  '{1,NULL,3}', '{"a","b c",NULL,"","quote\"d","back\\slash"}', '[0:2]={7,8,9}', '{sad,"très ☺"}',
  '[1,10)', '(,5]', '[2024-01-01 00:00+00,2024-06-01 12:30+02)', '(1.5,2.25]', 'empty', '[1.5,2.5]',
  'très ☺', 1, 'Someone@Example.com', ROW('Main St, "1"', 12345, '{x,y}', 'ok'),
  ARRAY[ROW('a', 1, '{}', 'sad')::app.addr, ROW(NULL, NULL, NULL, NULL)::app.addr],
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29 23:59:59.999999+05:30', '1999-12-31 23:59:59.5',
  '2000-02-29', '24:00:00', '12:34:56.789+03', '1 year 2 mons 3 days 04:05:06.789',
  '192.168.1.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
  '(1.5,-2)', '((0,0),(1,1))', '((0,0),(1,0),(1,1))', '{1,-1,0}', '[(0,0),(1,1)]', '[(0,0),(1,1),(2,0)]', '<(0,0),2>',
  '-92233720368547758.08', B'10101010', B'1', 'a fat cat:1A sat:2B', 'fat & (rat | !cat)',
  '<doc lang="fr">été &amp; <b>gras</b></doc>', 'a=>1, "b c"=>NULL', 'MiXeD', 4294967295, 'x', 2),
 (32767, 2147483647, 9223372036854775807, '-0', '5e-324',
  (repeat('9', 1000) || '.' || repeat('1', 200))::numeric, '0.00000000000000000001', true,
  '', '', '', '', '', 'null', 'null', '{}', '{}', '{{1,2},{3,4}}', '{}',
  '(,)', '[-9223372036854775808,9223372036854775807)', '[-infinity,infinity]', '[-1e-20,1e20]', '[2000-01-01,infinity)', 'empty',
  'sad', 2147483647, 'a@b', ROW(NULL, NULL, '{NULL}', NULL), '{}',
  '00000000-0000-0000-0000-000000000000', 'infinity', '-infinity', '4713-01-01 BC', '00:00:00', '00:00:00-15:59',
  '-178000000 years', '::1/128', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00',
  '(1e300,-1e-300)', '((-1,-1),(1e10,1e10))', '((0,0))', '{0,1,0}', '[(1,1),(1,1)]', '((0,0))', '<(1,1),0>',
  '92233720368547758.07', B'00000000', B'', '', 'x', '<e/>', '', '', 0, E'\\001', -4);
INSERT INTO app.everything DEFAULT VALUES;
INSERT INTO app.everything (n, f8, f4) VALUES ('Infinity', 'NaN', 'Infinity'), ('-Infinity', '-0', '-Infinity'),
  ('0.000000000000000000000000000000000000000000000000000000000000000000000000000001', 1e308, 3.4e38);
INSERT INTO app.everything (n, t, jb, ia, mood, em)
SELECT g * 1.5, 'row ' || g, jsonb_build_object('g', g, 's', repeat('✓', g % 7)), ARRAY[g, g + 1],
       (ARRAY['sad','ok','happy']::app.mood[])[1 + g % 3], 'u' || g || '@x.org'
FROM generate_series(1, 500) g;
CREATE INDEX everything_jb ON app.everything USING gin (jb);
CREATE INDEX everything_lower_t ON app.everything (lower(t));
CREATE INDEX everything_mood_partial ON app.everything (i4) WHERE mood = 'happy';
CREATE INDEX everything_u_hash ON app.everything USING hash (u);

-- Identity columns, and a trigger that must not fire while the rows are loaded.
CREATE TABLE app.ident (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  by_default int GENERATED BY DEFAULT AS IDENTITY (START WITH 50 INCREMENT BY 5) UNIQUE,
  note text
);
INSERT INTO app.ident (note) SELECT 'n' || g FROM generate_series(1, 10) g;
CREATE TRIGGER ident_bump BEFORE INSERT OR UPDATE ON app.ident
  FOR EACH ROW EXECUTE FUNCTION app.bump();

-- A range-partitioned table with an index on the parent.
CREATE TABLE app.measure (id int, at date NOT NULL, v numeric, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE app.measure_2024 PARTITION OF app.measure FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE app.measure_2025 PARTITION OF app.measure FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX measure_v ON app.measure (v);
INSERT INTO app.measure SELECT g, date '2024-01-01' + (g % 700), g / 7.0 FROM generate_series(1, 3000) g;

-- Inheritance: rows in the parent and in the child.
CREATE TABLE app.animal (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE app.dog (bark text DEFAULT 'woof') INHERITS (app.animal);
INSERT INTO app.animal VALUES (1, 'generic'), (2, 'thing');
INSERT INTO app.dog VALUES (3, 'rex', 'WOOF'), (4, 'fido', DEFAULT);

CREATE UNLOGGED TABLE app.cache (k text PRIMARY KEY, v jsonb);
INSERT INTO app.cache SELECT 'k' || g, to_jsonb(g) FROM generate_series(1, 100) g;
ALTER TABLE app.cache ENABLE ROW LEVEL SECURITY;
CREATE POLICY cache_all ON app.cache USING (true);

-- No primary key, duplicate rows.
CREATE TABLE app.nopk (a int, b text);
INSERT INTO app.nopk VALUES (1, 'x'), (1, 'x'), (2, NULL), (NULL, NULL), (NULL, NULL);

-- TOASTed values: 1 MB of poorly compressible text and bytea.
CREATE TABLE app.big_values (id int PRIMARY KEY, body text, blob bytea);
INSERT INTO app.big_values
SELECT g, (SELECT string_agg(md5((g * 100000 + i)::text), '') FROM generate_series(1, 32768) i),
          (SELECT decode(string_agg(md5((g * 7 + i)::text), ''), 'hex') FROM generate_series(1, 32768) i)
FROM generate_series(1, 3) g;

-- Names that need quoting.
CREATE TABLE app."My ""Odd"" Table" ("Select" int PRIMARY KEY, "has space" text, "CamelCase" app.mood);
INSERT INTO app."My ""Odd"" Table" VALUES (1, 'one', 'ok'), (2, NULL, NULL);
CREATE TABLE "Sales Dept"."Order" (id serial PRIMARY KEY, "from" text, "Group" int);
INSERT INTO "Sales Dept"."Order" ("from", "Group") SELECT 'f' || g, g FROM generate_series(1, 20) g;
COMMENT ON COLUMN app."My ""Odd"" Table"."has space" IS 'a column with a space';

-- Constraints, foreign keys (a self reference, a deferrable cycle), sequences.
CREATE TABLE public.customers (
  id serial PRIMARY KEY,
  email app.email UNIQUE,
  age int CHECK (age >= 0),
  created timestamptz DEFAULT now()
);
CREATE TABLE public.orders (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES public.customers (id) ON DELETE CASCADE,
  total numeric(12, 2) CHECK (total >= 0),
  status app.mood DEFAULT 'ok',
  UNIQUE (customer_id, id)
);
CREATE INDEX orders_total_happy ON public.orders (total) WHERE status = 'happy';
CREATE INDEX customers_lower_email ON public.customers (lower(email::text));
INSERT INTO public.customers (email, age, created)
SELECT 'c' || g || '@shop.test', g % 90, '2024-01-01'::timestamptz + g * interval '1 hour'
FROM generate_series(1, 300) g;
INSERT INTO public.orders (customer_id, total, status)
SELECT 1 + g % 300, (g * 3.17)::numeric(12, 2), (ARRAY['sad','ok','happy']::app.mood[])[1 + g % 3]
FROM generate_series(1, 2000) g;
CREATE TABLE public.tree (id int PRIMARY KEY, parent int REFERENCES public.tree (id));
INSERT INTO public.tree SELECT g, CASE WHEN g > 1 THEN g / 2 END FROM generate_series(1, 200) g;
CREATE TABLE public.chicken (id int PRIMARY KEY, egg_id int);
CREATE TABLE public.egg (id int PRIMARY KEY, chicken_id int REFERENCES public.chicken (id) DEFERRABLE INITIALLY DEFERRED);
ALTER TABLE public.chicken ADD FOREIGN KEY (egg_id) REFERENCES public.egg (id) DEFERRABLE INITIALLY DEFERRED;
BEGIN;
INSERT INTO public.chicken VALUES (1, 1), (2, 2);
INSERT INTO public.egg VALUES (1, 2), (2, 1);
COMMIT;

CREATE SEQUENCE app.counter START 100 INCREMENT 7;
SELECT setval('app.counter', 12345);
CREATE SEQUENCE app.untouched;
SELECT setval('public.customers_id_seq', 5000);
SELECT nextval('"Sales Dept"."Order_id_seq"') FROM generate_series(1, 5);

-- A very wide row: 200 columns.
DO $$
DECLARE cols text := 'id int PRIMARY KEY';
BEGIN
  FOR i IN 1..199 LOOP
    cols := cols || format(', c%s %s', i, CASE i % 3 WHEN 0 THEN 'int' WHEN 1 THEN 'text' ELSE 'numeric' END);
  END LOOP;
  EXECUTE format('CREATE TABLE app.wide (%s)', cols);
END $$;
DO $$
DECLARE vals text;
BEGIN
  FOR r IN 1..50 LOOP
    vals := r::text;
    FOR i IN 1..199 LOOP
      vals := vals || ', ' || CASE i % 3 WHEN 0 THEN (r * i)::text WHEN 1 THEN quote_literal('v' || r || '_' || i) ELSE (r / (i + 0.5))::text END;
    END LOOP;
    EXECUTE format('INSERT INTO app.wide VALUES (%s)', vals);
  END LOOP;
END $$;

-- Less common types and storage details.
CREATE DOMAIN app.tags AS text[] CHECK (cardinality(VALUE) < 10);
CREATE COLLATION app.posix_c (provider = libc, locale = 'C');
CREATE TABLE app.odds (
  id int PRIMARY KEY,
  tags app.tags,
  mr int4multirange,
  lsn pg_lsn,
  jp jsonpath,
  name text COLLATE app.posix_c,
  during tstzrange,
  EXCLUDE USING gist (during WITH &&)
) WITH (fillfactor = 70);
ALTER TABLE app.odds REPLICA IDENTITY FULL;
ALTER TABLE app.odds ALTER COLUMN name SET STORAGE EXTERNAL;
ALTER TABLE app.odds ALTER COLUMN name SET STATISTICS 500;
CREATE STATISTICS app.odds_stats (dependencies) ON id, name FROM app.odds;
INSERT INTO app.odds VALUES
  (1, '{a,b}', '{[1,3), [7,9)}', '16/B374D848', '$.a[*] ? (@ > 1)', 'zed',
   '[2024-01-01, 2024-02-01)'),
  (2, NULL, '{}', '0/0', '$', NULL, '[2024-02-01, 2024-03-01)');
-- Dropped and added columns (attisdropped, attmissingval).
CREATE TABLE app.evolved (id int PRIMARY KEY, gone text, kept text);
INSERT INTO app.evolved SELECT g, 'gone ' || g, 'kept ' || g FROM generate_series(1, 20) g;
ALTER TABLE app.evolved DROP COLUMN gone;
ALTER TABLE app.evolved ADD COLUMN added int DEFAULT 7;
INSERT INTO app.evolved (id, kept, added) VALUES (21, 'new', 8);

-- Views, a materialized view, functions, privileges, a large object.
CREATE VIEW public.order_totals AS
  SELECT customer_id, sum(total) AS total, count(*) AS n FROM public.orders GROUP BY customer_id;
CREATE MATERIALIZED VIEW app.mood_counts AS
  SELECT mood, count(*) AS n FROM app.everything GROUP BY mood;
CREATE UNIQUE INDEX mood_counts_mood ON app.mood_counts (mood);
CREATE FUNCTION public.customer_total(cid int) RETURNS numeric STABLE LANGUAGE sql
  AS 'SELECT coalesce(sum(total), 0) FROM public.orders WHERE customer_id = cid';
CREATE PROCEDURE public.noop(x int) LANGUAGE plpgsql AS $$ BEGIN PERFORM x; END $$;
GRANT SELECT ON public.order_totals TO PUBLIC;
REVOKE EXECUTE ON FUNCTION public.customer_total(int) FROM PUBLIC;
SELECT lo_from_bytea(0, '\xdeadbeef00');
ANALYZE;
