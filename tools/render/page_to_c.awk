# page_to_c.awk - tools/render/explorer.html as two C strings: html_page_head (up to the
# "<!-- cowvm-data -->" line, where html.c puts the runs' data) and html_page_tail (the rest).
BEGIN { print "/* generated from tools/render/explorer.html by page_to_c.awk: do not edit */"; print "static const char html_page_head[] ="; }
/^<!-- cowvm-data -->$/ { print "\t\"\";"; print "static const char html_page_tail[] ="; next }
{ gsub(/\\/, "&&"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); print "\t\"" $0 "\\n\"" }
END { print "\t\"\";" }
