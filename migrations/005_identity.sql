-- Placeholder on the staff branch only: migration 005 belongs to the identity branch, whose file
-- of the same name replaces this one at merge. tern refuses a gap in the numbers, so 006 cannot
-- be applied without a 005.
SELECT 1;

---- create above / drop below ----

SELECT 1;
