-- Registers that NEM13 (and other meter data) ingest can match reads to: one row per register,
-- with the NMI of its site and the dates it is active. Ingest matches (NMI, NMISuffix) to
-- (nmi, suffix) — or (NMI, RegisterID) to (nmi, suffix) where the suffix matches nothing — among
-- registers active on the read date (start_date <= read_date <= end_date, NULL = open).
SELECT
    mr.id AS meter_register_id,
    s.identifier AS nmi,
    mr.suffix AS suffix,
    m.serial_number AS serial_number,
    CASE WHEN m.start_date > mr.start_date THEN m.start_date ELSE mr.start_date END AS start_date,
    CASE
        WHEN m.end_date IS NULL THEN mr.end_date
        WHEN mr.end_date IS NULL THEN m.end_date
        WHEN m.end_date < mr.end_date THEN m.end_date
        ELSE mr.end_date
    END AS end_date
FROM meter_register mr
JOIN meter m ON m.id = mr.meter_id
JOIN site s ON s.id = m.site_id
ORDER BY s.identifier, mr.suffix, mr.id
