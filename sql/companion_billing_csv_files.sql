-- Billing CSV files already ingested (the poller emits events only for new or changed objects).
SELECT source_url, etag, status, loaded_at
FROM billing_csv_file
