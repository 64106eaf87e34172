-- Legacy file rows for bench/inventory.sh, generated set-based in MariaDB (the SEQUENCE
-- engine's seq_1_to_N tables). Run after infra/sql/legacy_mysql.sql in an empty database with
-- @rows set (total files). Shapes: 200 customers; 60% of the files are attachments (each on a
-- certificate; two in three with a primary repo_file whose path is one of the three attachment
-- generations, the rest built from the spec's rule), 40% standalone repo_file rows under
-- /efsdata/filerepo/; 1 in 500 customers has no account mapping (files sent with a problem).
SET SESSION sql_mode = '';
SET @attachments = @rows * 6 DIV 10;
SET @repo_files = @rows - @attachments;

INSERT INTO customer (id, name) SELECT seq, CONCAT('Customer ', seq) FROM seq_1_to_200;

INSERT INTO certificate (id, customer_id, attachment_id)
SELECT seq, 1 + seq % 200, seq FROM seq_1_to_10000000 WHERE seq <= @attachments;

INSERT INTO attachment (id, name, certificate_id, document_id, create_time)
SELECT seq, CONCAT('coi_', seq, '.pdf'), seq, NULL, '2019-01-01' + INTERVAL seq % 1500 DAY
FROM seq_1_to_10000000 WHERE seq <= @attachments;

INSERT INTO repo_file (id, repo_filepath, status, certificate_id, attachment_id, customer_id)
SELECT seq,
       CONCAT(ELT(1 + seq % 3, '/home/wwwriskt/public_html/attachments/', '/home/wwwriskt/public_html/www1/attachments/', '/efsdata/attachments/'),
              'certificate_management/', 1 + seq % 200, '/coi_', seq, '.pdf'),
       'SUBMITTED', seq, seq, 1 + seq % 200
FROM seq_1_to_10000000 WHERE seq <= @attachments AND seq % 3 <> 0;

INSERT INTO repo_file (id, repo_filepath, status, upload_src, customer_id)
SELECT 20000000 + seq, CONCAT('/efsdata/filerepo/', 1 + seq % 200, '/', seq DIV 1000, '/upload_', seq, '.pdf'),
       'SUBMITTED', 'portal', 1 + seq % 200
FROM seq_1_to_10000000 WHERE seq <= @repo_files;
