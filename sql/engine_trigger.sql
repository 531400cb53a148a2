-- External billing engine (BUA_ENGINE_TRIGGER=sql): start the engine's invoice runs for the run date.
-- The engine's own procedure; a retailer whose engine has another entry point edits this file.
CALL billing_engine_invoice_run(:run_date)
