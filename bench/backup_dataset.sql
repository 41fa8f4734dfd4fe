-- Benchmark dataset for bench/backup.sh: the Spilt Tea tables with realistic,
-- not-too-compressible rows (users with bcrypt-like hashes, posts with random
-- sentences), in a separate database so tests stay fast. This file creates the
-- schema (as Prisma does) and two fill functions; bench/backup.sh calls them in
-- batches of committed rows so a restarted server only costs one batch.
\set ON_ERROR_STOP 1
CREATE TABLE IF NOT EXISTS "User" (
    id serial PRIMARY KEY,
    email text NOT NULL,
    password text NOT NULL,
    "isActive" boolean DEFAULT true NOT NULL,
    "createdAt" timestamp(3) without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    "failedLoginCount" integer DEFAULT 0 NOT NULL,
    "lastFailedLogin" timestamp(3) without time zone
);
CREATE TABLE IF NOT EXISTS "Post" (
    id serial PRIMARY KEY,
    title text NOT NULL,
    "authorId" integer NOT NULL,
    "createdAt" timestamp(3) without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    "viewCount" integer DEFAULT 0 NOT NULL
);
CREATE TABLE IF NOT EXISTS "Report" (
    id serial PRIMARY KEY,
    "postId" integer NOT NULL,
    "reporterId" integer NOT NULL,
    reason text NOT NULL,
    "createdAt" timestamp(3) without time zone DEFAULT CURRENT_TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id character varying(36) PRIMARY KEY,
    checksum character varying(64) NOT NULL,
    finished_at timestamp with time zone,
    migration_name character varying(255) NOT NULL,
    logs text,
    rolled_back_at timestamp with time zone,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    applied_steps_count integer DEFAULT 0 NOT NULL
);
INSERT INTO _prisma_migrations(id, checksum, finished_at, migration_name, applied_steps_count)
VALUES ('00000000-0000-0000-0000-000000000001', repeat('a', 64), now(), '20240101000000_init', 1)
ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION bench_words() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT string_to_array('the a of to and in is it you that he was for on are with as his they be at one have this from or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find any new work part take get place made live where after back little only round man year came show every good me give our under name very through just form sentence great think say help low line differ turn cause much mean before move right boy old too same tell does set three want air well also play small end put home read hand port large spell add even land here must big high such follow act why ask men change went light kind off need house picture try us again animal point mother world near build self earth father barista chef ferry terminal night market rumour spotted leaving moving abroad secret party campus library mayor council coffee tea spilt gossip allegedly apparently honestly', ' ')
$$;

CREATE OR REPLACE FUNCTION bench_fill_users(lo int, hi int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO "User"(id, email, password, "isActive", "createdAt", "failedLoginCount", "lastFailedLogin")
  SELECT g, w.a[1 + (g::bigint * 7919) % cardinality(w.a)] || '.' ||
            substr(md5(random()::text), 1, 6 + (g % 5)) || g::text || '@' ||
            (ARRAY['gmail.com','outlook.com','icloud.com','proton.me','yahoo.com'])[1 + g % 5],
         '$2b$10$' || substr(translate(encode(sha256((random()::text || g::text)::bytea), 'base64') ||
                                       encode(sha256((g::text || random()::text)::bytea), 'base64'), '+=', './'), 1, 53),
         random() > 0.05,
         timestamp '2024-01-01' + random() * interval '700 days',
         CASE WHEN random() < 0.1 THEN (random() * 5)::int ELSE 0 END,
         CASE WHEN random() < 0.1 THEN timestamp '2025-06-01' + random() * interval '200 days' END
  FROM generate_series(lo, hi) g, (SELECT bench_words() AS a) w
$$;

CREATE OR REPLACE FUNCTION bench_fill_posts(lo int, hi int, users int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO "Post"(id, title, "authorId", "createdAt", "viewCount")
  SELECT g, (SELECT string_agg(w.a[1 + floor(random() * cardinality(w.a))::int + 0 * s], ' ')
             FROM generate_series(1, 6 + g % 9) s) || ' #' || (random() * 100000)::int,
         1 + (random() * (users - 1))::int,
         timestamp '2024-01-01' + random() * interval '700 days',
         (random() * 5000)::int
  FROM generate_series(lo, hi) g, (SELECT bench_words() AS a) w
$$;

CREATE OR REPLACE FUNCTION bench_fill_reports(n int, users int, posts int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO "Report"(id, "postId", "reporterId", reason, "createdAt")
  SELECT g, 1 + (random() * (posts - 1))::int, 1 + (random() * (users - 1))::int,
         (ARRAY['spam','harassment','personal information','misinformation','other'])[1 + (random() * 4)::int],
         timestamp '2025-01-01' + random() * interval '300 days'
  FROM generate_series(1, n) g
  ON CONFLICT DO NOTHING
$$;
