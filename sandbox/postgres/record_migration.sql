-- Records one applied migration the way Prisma does: checksum is the SHA-256
-- of migration.sql, started_at comes from the migration's timestamp prefix.
-- psql variables: name, checksum.
INSERT INTO "_prisma_migrations"
    (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
VALUES (
    gen_random_uuid()::text,
    :'checksum',
    to_timestamp(left(:'name', 14), 'YYYYMMDDHH24MISS') + interval '412 milliseconds',
    :'name',
    NULL,
    NULL,
    to_timestamp(left(:'name', 14), 'YYYYMMDDHH24MISS'),
    1
);
