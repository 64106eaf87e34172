-- A legacy DTX 1.0 database at the spec's upper estimates, generated set-based in MariaDB (the
-- SEQUENCE engine's seq_1_to_N tables), for bench/loader-scale.sh. Run after
-- infra/sql/legacy_mysql.sql in an empty database, with these session variables set:
--   @certs (e.g. 200000), @docs (e.g. 50000); 4 certificate_status rows per certificate.
-- Shapes: 200 customers, a vendor per 10 certificates, 40 requirement sets, 1,000 document sets
-- of 5 documents, 200 document libraries; ~3% of certificates have an unmapped vendor (skipped
-- and logged), ~10% no stored file, ~2% an override, every 7th status row a field_name outside
-- the prefix table (OtherCoverage).
SET SESSION sql_mode = '';
SET @vendors = GREATEST(@certs DIV 10, 10);
SET @customers = 200;

INSERT INTO customer (id, name, logo)
SELECT seq, CONCAT('Customer ', seq), CONCAT('logos/', seq, '.png') FROM seq_1_to_200;

INSERT INTO document_library (id, customer_id, name, description, create_time)
SELECT seq, 1 + seq % @customers, CONCAT(ELT(1 + seq % 8, 'W-9', 'Good Standing', 'Lien Waiver', 'License', 'Safety Plan', 'Bond', 'Endorsement', 'Contract'),
       IF(seq % 3 = 0, '', CONCAT(' v', seq % 25))), 'generated', '2018-01-01' + INTERVAL seq DAY
FROM seq_1_to_200;

INSERT INTO document_set (id, customer_id, name, description, create_time)
SELECT seq, 1 + seq % @customers, CONCAT('Standard set ', seq), 'generated', '2018-06-01' + INTERVAL seq % 700 DAY FROM seq_1_to_1000;

INSERT INTO vendor (id, customer_id, requirements_id, document_set_id, name)
SELECT seq, 1 + seq % @customers, 1 + seq % 40, 1 + seq % 1000, CONCAT('Vendor ', seq)
FROM seq_1_to_1000000 WHERE seq <= @vendors;

INSERT INTO attachment (id, name, certificate_id, document_id, create_time)
SELECT seq, CONCAT('coi_', seq, '.pdf'), seq, NULL, '2019-01-01' + INTERVAL seq % 1500 DAY
FROM seq_1_to_1000000 WHERE seq <= @certs;

INSERT INTO certificate (id, customer_id, vendor_id, attachment_id, create_time, update_time, CertNo, certificate_expiration,
    OpsDesc, AuthRepName, AuthDate,
    ProdName, ProdContact, ProdAddr1, ProdAddr2, ProdCity, ProdState, ProdZip, ProdPhone, ProdFax, ProdEmail,
    InsName, InsName1, InsAddr1, InsCity, InsState, InsZip, InsContact, InsPhone, InsEmail,
    HolderName, HolderAddr1, HolderCity, HolderState, HolderZip, HolderContact, HolderPhone, HolderEmail,
    requirements_id, document_set_id, user_id, CertRevNo, certificate_status, override_reason, review_time)
SELECT s.seq,
       1 + v % @customers,
       IF(s.seq % 33 = 0, 9000000 + s.seq, v),
       s.seq,
       '2019-01-01' + INTERVAL s.seq % 1500 DAY + INTERVAL s.seq % 86400 SECOND,
       '2019-02-01' + INTERVAL s.seq % 1500 DAY,
       CONCAT('C-', s.seq), '2020-01-01' + INTERVAL s.seq % 1500 DAY,
       REPEAT('Operations description. ', 1 + s.seq % 6), 'Authorized Rep', '2019-01-01' + INTERVAL s.seq % 1500 DAY,
       CONCAT('Broker ', s.seq % 500), 'Agent Smith', CONCAT(s.seq % 900, ' Main St'), IF(s.seq % 2 = 0, 'Suite 100', NULL), 'Boston', 'MA', '02101',
       '555-0100', IF(s.seq % 3 = 0, '555-0101', NULL), CONCAT('agent', s.seq % 500, '@broker.example'),
       CONCAT('Insured ', v), IF(s.seq % 4 = 0, CONCAT('DBA Insured ', v), NULL), '2 Elm St', 'Salem', 'MA', '01970', 'Owner', '555-0200',
       CONCAT('owner', v, '@insured.example'),
       CONCAT('Holder ', 1 + v % @customers), '3 Oak St', 'Lynn', 'MA', '01901', 'Risk Manager', '555-0300', 'risk@holder.example',
       1 + v % 40, 1 + v % 1000, 1 + s.seq % 100, IF(s.seq % 5 = 0, '2', NULL),
       ELT(1 + s.seq % 10, 'FINISHED', 'FINISHED', 'FINISHED', 'FINISHED', 'FINISHED', 'FINISHED', 'PENDING', 'PENDING', 'IN_REVIEW', 'FINISHED'),
       IF(s.seq % 50 = 0, 'approved by phone', NULL), '2019-03-01' + INTERVAL s.seq % 1500 DAY
FROM (SELECT seq, 1 + seq % @vendors AS v FROM seq_1_to_1000000 WHERE seq <= @certs) s;

INSERT INTO certificate_status (id, certificate_id, status_code, field_name, minimum, actual, create_time)
SELECT (c.seq - 1) * 4 + f.seq, c.seq,
       IF((c.seq + f.seq) % 5 = 0, 'NON_COMPLIANT', 'COMPLIANT'),
       IF(((c.seq - 1) * 4 + f.seq) % 7 = 0, 'MiscRequirement',
          ELT(f.seq, 'GLPolExpDate', 'AutoPolExpDate', 'WCPolExpDate', 'UMBEachOccLimit')),
       '1000000', '2000000', '2019-01-01' + INTERVAL c.seq % 1500 DAY
FROM seq_1_to_1000000 c JOIN seq_1_to_4 f WHERE c.seq <= @certs;

INSERT INTO document (id, customer_id, vendor_id, attachment_id, name, create_time, expiration_date, comments, update_time,
    document_status, document_library_id, user_id, docusign_template_id, parent_document_id)
SELECT s.seq, 1 + v % @customers, v, 5000000 + s.seq, CONCAT('Document ', s.seq), '2019-01-01' + INTERVAL s.seq % 1500 DAY,
       '2021-01-01' + INTERVAL s.seq % 900 DAY, IF(s.seq % 3 = 0, 'checked', NULL), '2019-02-01' + INTERVAL s.seq % 1500 DAY,
       ELT(1 + s.seq % 5, '0', '0', 'APPROVED', 'REJECTED', 'NOT_PROVIDED'), 1 + s.seq % 200, 1 + s.seq % 100,
       IF(s.seq % 97 = 0, CONCAT('DS-', s.seq), NULL), IF(s.seq % 50 = 0 AND s.seq > 1, s.seq - 1, NULL)
FROM (SELECT seq, 1 + seq % @vendors AS v FROM seq_1_to_1000000 WHERE seq <= @docs) s;

INSERT INTO attachment (id, name, certificate_id, document_id, create_time)
SELECT 5000000 + seq, CONCAT('doc_', seq, '.pdf'), NULL, seq, '2019-01-01' + INTERVAL seq % 1500 DAY
FROM seq_1_to_1000000 WHERE seq <= @docs;

INSERT INTO document_requirements (id, document_set_id, document_id)
SELECT seq, 1 + seq % 1000, 1 + (seq * 7) % @docs FROM seq_1_to_5000;

INSERT INTO document_status (id, vendor_id, customer_id, document_id, document_library_id, document_status, create_time)
SELECT seq, 1 + seq % @vendors, 1 + (1 + seq % @vendors) % @customers, seq, 1 + seq % 200,
       ELT(1 + seq % 5, 'NOT_PROVIDED', 'PROVIDED', 'APPROVED', 'REJECTED', 'OVERRIDE'), '2019-01-01' + INTERVAL seq % 1500 DAY
FROM seq_1_to_1000000 WHERE seq <= @docs;
