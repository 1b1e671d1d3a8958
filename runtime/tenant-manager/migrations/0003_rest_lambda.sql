-- REST on Lambda: the project's `rest-<ref>` function and its AWS_IAM Function URL (NULL in service mode).
ALTER TABLE supactl.projects ADD COLUMN rest_function_name text;
ALTER TABLE supactl.projects ADD COLUMN rest_function_url text;
