module github.com/sandboxd/sandboxd/examples/httpd

go 1.26.0
