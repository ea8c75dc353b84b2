package mirror

// Routes, per server (base URLs in Mirrors; "id" is a decimal object id):
//
//	ebi-ftp       GET /<dir>/                Apache fancy index (?C=N|M|S|D;O=A|D sort links,
//	                                         absolute Parent Directory link, "1.2K"-style sizes)
//	              GET /<dir>                 301 to /<dir>/
//	              GET|HEAD /<file>           file: Range, ETag, Last-Modified, If-None-Match, If-Range
//	              trees: /empiar/world_availability/<EMPIARID>/… and /pub/databases/IDR/<study>/…
//	epfl          GET /labs/cvlab/data/data-em/     static page, 10 links in article#post-2138
//	              GET /labs/cvlab/data/data-em-js/  same, links added by an inline script
//	epfl-docs     GET|HEAD /groups/c/cv/cvlab-unit/www/data/%20ElectronMicroscopy_Hippocampus/<file>
//	              folders: 403
//	idr           GET /webclient/?experimenter=-1       sets sessionid (cookie optional afterwards)
//	              GET /webclient/img_detail/<id>/       HTML
//	              GET /api/, /api/v0/
//	              GET /api/v0/m/images/<id>/            {"data": {…}}
//	              GET /api/v0/m/images/?dataset=<id>    {"data": […], "meta": {totalCount, limit, offset, maxLimit}}
//	              GET /api/v0/m/datasets/<id>/images/   same; ?limit= (default 200, max 500) &offset=
//	              GET /api/v0/m/datasets/<id>/
//	              GET /webclient/imgData/<id>/, /webgateway/imgData/<id>/
//	              GET /webgateway/original_file_paths/<id>/
//	              GET /webgateway/render_image/<id>/[<z>/[<t>/]]  JPEG; ?c=1|start:end$RRGGBB, ?q=0..1
//	empiar        GET /empiar/api/entry/<EMPIARID|EMPIAR-EMPIARID>[/]
//	              GET /empiar/EMPIAR-<EMPIARID>/      HTML with public-archive-ftp-url and csrf-token
//	s3            path style (s3.go): GET /<bucket>?list-type=2&prefix=&delimiter=&max-keys=&continuation-token=,
//	              GET|HEAD /<bucket>/<key> (one Range, If-None-Match); XML errors NoSuchBucket, NoSuchKey, InvalidRange
//	gcs           (gcs.go) GET /storage/v1/b/<bucket>/o?prefix=&delimiter=&maxResults=&pageToken=,
//	              GET /storage/v1/b/<bucket>/o/<escaped key>[?alt=media], GET|HEAD /<bucket>/<key>,
//	              GET /download/storage/v1/b/<bucket>/o/<escaped key>?alt=media (all ranged);
//	              JSON errors on /storage/v1/…, XML errors on /<bucket>/<key>
//	openorganelle GET /datasets/<name>            JS-app shell page
//	shortlink     GET /hemibrain-ng               301 to <shortlink>/ng/#!<percent-encoded state>
//	              GET /ng/                        tiny viewer page
