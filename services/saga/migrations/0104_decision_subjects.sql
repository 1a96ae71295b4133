-- A step can ask several questions at once, one per subject (a claim).
ALTER TABLE saga_decisions ADD COLUMN subject TEXT;
