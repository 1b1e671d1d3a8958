# Sourced by the benchmarks: `nginx_conf NAME WORKERS SERVER-BLOCK ACCESS-LOG` starts Debian's nginx in the
# foreground under $DATA/NAME with that http block and appends its pid to PIDS (the caller's cleanup stops it).
nginx_conf() {
  mkdir -p "$DATA/$1/logs"
  cat >"$DATA/$1/nginx.conf" <<EOF
worker_processes $2;
daemon off;
pid $DATA/$1/nginx.pid;
error_log $DATA/$1/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log $4;
  client_body_temp_path $DATA/$1/body;
  proxy_temp_path $DATA/$1/proxy;
  fastcgi_temp_path $DATA/$1/fastcgi;
  uwsgi_temp_path $DATA/$1/uwsgi;
  scgi_temp_path $DATA/$1/scgi;
  $3
}
EOF
  nginx -p "$DATA/$1" -c "$DATA/$1/nginx.conf" &
  PIDS+=($!)
}
