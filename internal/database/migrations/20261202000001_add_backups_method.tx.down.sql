ALTER TABLE backups DROP COLUMN method;
