-- The rows that the staged states (_orusage_sources) replace: the same file (device and inode),
-- or another file last seen at the same path (a rotation moved it on; its own row comes back with
-- it if it is read under its new name).
delete from log_sources
where scope = $scope
    and (file_id in (select file_id from _orusage_sources) or path in (select path from _orusage_sources))
