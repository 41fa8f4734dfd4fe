-- Seed data of the sandbox database: 320 users, 4000 posts, 45 reports.
-- setseed() makes every fresh sandbox hold the same rows; dates are relative
-- to now() so the runbook's "last hour" / "last 24 hours" queries find some.

SELECT setseed(0.2026);

INSERT INTO "User" (email, password, "isActive", "createdAt")
SELECT
    (ARRAY['amara','ben','chloe','dmitri','elif','farah','gus','hana','ivan','jade',
           'kofi','lena','mateo','nia','omar','priya','quinn','rosa','sami','tess',
           'uma','viktor','wen','xavi','yara','zoe','arjun','bea','carlos','dana'])
        [1 + floor(random() * 30)::int]
    || '.' ||
    (ARRAY['okafor','nguyen','schmidt','rossi','tanaka','silva','kowalski','haddad',
           'murphy','jensen','garcia','ivanova','mensah','park','dubois','khan',
           'oconnell','moreau','santos','yilmaz'])
        [1 + floor(random() * 20)::int]
    || g || '@' ||
    (ARRAY['gmail.com','outlook.com','proton.me','yahoo.com','icloud.com','spilttea.test'])
        [1 + floor(random() * 6)::int],
    -- bcrypt-shaped hashes: "$2b$10$" + 53 characters of its alphabet
    '$2b$10$' || substr(translate(encode(sha256(('user' || g)::bytea), 'base64')
                                  || encode(sha256(('salt' || g)::bytea), 'base64'),
                                  '+=', './'), 1, 53),
    random() > 0.05,
    now() - random() * interval '180 days'
FROM generate_series(1, 320) AS g;

-- A few accounts created in the last day (the incident queries look for them).
UPDATE "User" SET "createdAt" = now() - random() * interval '20 hours'
WHERE id % 53 = 0;

-- Brute-force pattern: repeated recent failures on some accounts, older
-- isolated failures on others.
UPDATE "User"
SET "failedLoginCount" = 6 + floor(random() * 20)::int,
    "lastFailedLogin" = now() - random() * interval '50 minutes'
WHERE id IN (7, 42, 133, 256);

UPDATE "User"
SET "failedLoginCount" = 1 + floor(random() * 3)::int,
    "lastFailedLogin" = now() - interval '2 days' - random() * interval '30 days'
WHERE id % 17 = 0 AND id NOT IN (7, 42, 133, 256);

INSERT INTO "Post" (title, "authorId", "createdAt", "viewCount")
SELECT
    (ARRAY['Spilled:','Rumour:','Overheard:','Confirmed:','Hot take:','Unpopular opinion:',
           'Update:','PSA:','Not sure if true, but','Can anyone confirm?'])
        [1 + floor(random() * 10)::int]
    || ' ' ||
    (ARRAY['the barista at','my manager at','the new intern in','our landlord on',
           'the drummer from','a city councillor in','the night-shift nurse at',
           'the head chef of','a lecturer at','the quiet neighbour on',
           'the HR team at','the startup founder from'])
        [1 + floor(random() * 12)::int]
    || ' ' ||
    (ARRAY['the night market','Platform 9','the rooftop bar','Elm Street','the climbing gym',
           'the Tuesday quiz','the co-op','Harbour Road','the community garden',
           'the campus library','the vinyl shop','the ferry terminal'])
        [1 + floor(random() * 12)::int]
    || ' ' ||
    (ARRAY['was seen leaving at 3 a.m.','quietly quit','started a feud over parking',
           'got engaged','is opening a second place','lost the office fantasy league',
           'was caught reusing the same excuse','has a secret podcast','is moving abroad',
           'won the raffle twice','returned the borrowed ladder','adopted three cats'])
        [1 + floor(random() * 12)::int],
    1 + floor(random() * 320)::int,
    now() - power(random(), 2) * interval '90 days',
    floor(power(random(), 4) * 20000)::int
FROM generate_series(1, 4000) AS g;

INSERT INTO "Report" ("postId", "reporterId", reason, "createdAt")
SELECT
    1 + floor(random() * 4000)::int,
    1 + floor(random() * 320)::int,
    (ARRAY['harassment','spam','personal information','false information',
           'hate speech','off-topic','impersonation'])
        [1 + floor(random() * 7)::int],
    now() - random() * interval '14 days'
FROM generate_series(1, 45) AS g;

ANALYZE;
